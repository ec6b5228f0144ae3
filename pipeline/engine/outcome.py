"""What a search returns, to the command line and to Python alike: the study, the parent
run, the registered best model, and what a notebook asks of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import optuna
import pandas as pd

from pipeline import datasets, report
from pipeline.engine import studies
from pipeline.engine.ensembling import Ensemble
from pipeline.engine.plan import Plan


@dataclass
class Outcome:
    study: optuna.Study
    parent_run_id: str | None
    ran: int  # trials this invocation started
    table: pd.DataFrame = field(default_factory=pd.DataFrame)  # the top trials
    loaded: datasets.Dataset | None = field(default=None, repr=False)  # see `data`
    model_uri: str | None = None  # the registered best model (models:/NAME/VERSION)
    experiment_id: str | None = None
    plan: Plan | None = None  # what ran: its study's name, its dataset
    ensemble: Ensemble | None = None  # chosen from the kept trials, registered if it won

    @property
    def data(self) -> datasets.Dataset | None:
        """The dataset as the trials read it (the seeds' representation); read now when this
        invocation ran no trial."""
        if self.loaded is None and self.plan is not None:
            self.loaded = datasets.load_dataset(self.plan.dataset)
        return self.loaded

    @property
    def best_params(self) -> dict[str, Any]:
        """The best trial's params, by the names the space (or `hp`) gave them."""
        best = studies.best_trial(self.study)
        return dict(best.params) if best is not None else {}

    @property
    def trials(self) -> pd.DataFrame:
        """Every finished trial, best first: the settings that vary, the metrics, the run."""
        return report.trials_frame(self.study)

    @property
    def summary(self) -> str:
        """What the search prints at its end (`pipeline search` prints the same)."""
        from pipeline import summary  # deferred: it reads the study's records

        return summary.closing_text(self)

    def best_model(self):
        """The registered best model's Keras network, loaded from the MLflow registry: it
        takes the features the trials trained on (token ids, a bag of words, a table's
        encoded rows, or your arrays)."""
        from pipeline.tracking import models  # deferred: MLflow's model flavours

        if self.model_uri is None:
            raise LookupError("no model was registered: no trial completed")
        return models.load_keras_model(self.plan.stores.tracking, self.model_uri)

    def _repr_pretty_(self, printer, cycle: bool) -> None:  # IPython shows the summary
        printer.text(self.summary)
