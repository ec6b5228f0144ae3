"""The models of a study's best trials, kept in MLflow as artifacts of their trial runs,
written as each trial ends: whoever trained a trial (this process, a worker process, a Ray
worker on another node), its model outlives it, so a killed driver or a lost worker loses
nothing, and the next invocation can publish a model that was never published. A trial
that falls out of the best `keep` loses its artifact, so the disk a study takes stays
bounded."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import optuna

from pipeline import tracking
from pipeline.metrics import ranking_key

log = logging.getLogger("pipeline")
KEEP = 3  # trials whose model is kept, the best by the one ranking rule
MODEL_FILE = "model.keras"


class KeptModels:
    """Keeps the model of each trial that ends among its study's best `keep`."""

    def __init__(
        self, tracker: tracking.Tracker, experiment: str, minimize: bool, keep: int = KEEP
    ) -> None:
        self.tracker, self.experiment = tracker, experiment
        self.minimize, self.keep = minimize, keep

    def offer(self, study: optuna.Study, trial: optuna.Trial, run_id: str, value, model) -> None:
        """`trial` has just completed with `value` (still RUNNING in the storage)."""
        if model is None:
            return
        done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        best = self.best_numbers(done, extra=(value, trial.number))
        if trial.number not in best:
            return
        with tempfile.TemporaryDirectory() as tmp:
            model.save(Path(tmp) / MODEL_FILE)
            self.tracker.log_artifacts(run_id, Path(tmp), tracking.MODEL_DIR)
        self.tracker.set_tags(run_id, {tracking.KEPT_MODEL: "true"})
        self._drop_others(study.study_name, best, {t.number for t in done})

    def best_numbers(self, done: list, extra=None) -> set[int]:
        """The numbers of the best `keep` of the completed trials `done` (and `extra`:
        (value, number))."""
        pairs = [(t.values[0], t.number) for t in done] + ([extra] if extra else [])
        ranked = sorted(pairs, key=lambda p: ranking_key(p[0], p[1], self.minimize))
        return {number for _, number in ranked[: self.keep]}

    def _drop_others(self, study: str, best: set[int], done: set[int]) -> None:
        """Remove the models of the trials `done` (completed, as this worker sees them) no
        longer among the best. A trial that another worker is finishing now keeps its
        model: it is not in `done`, and it may well be the best. This worker may not see
        it, which can only push the others further down: none of the best is removed."""
        where = f"tags.{tracking.KEPT_MODEL} = 'true'"
        for run in self.tracker.runs(self.experiment, where):
            if run["tags"].get(tracking.STUDY) != study:
                continue
            number = int(run["tags"].get(tracking.TRIAL_NUMBER, -1))
            if number in best or number not in done:
                continue
            try:
                self.tracker.delete_artifacts(run["run_id"], tracking.MODEL_DIR)
                self.tracker.set_tags(run["run_id"], {tracking.KEPT_MODEL: "false"})
            except Exception as error:  # a model kept too many wastes disk, nothing more
                log.warning("the model of trial run %s was not removed: %s", run["run_id"], error)


def kept_model(tracker: tracking.Tracker, run_id: str, folder: Path) -> Path | None:
    """The kept model of a trial run, downloaded into `folder`; None if it has none."""
    if tracker.tags(run_id).get(tracking.KEPT_MODEL) != "true":
        return None
    return tracker.download_artifacts(run_id, f"{tracking.MODEL_DIR}/{MODEL_FILE}", folder)
