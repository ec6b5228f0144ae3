"""The best model of an invocation, made usable: the trained network bundled with what its
features were fitted with (raw input in), logged as an MLflow model on its trial run,
registered under the study's name, and crowned `champion` when it beats the champion."""

from __future__ import annotations

import logging
from pathlib import Path

import optuna
import pandas as pd

from pipeline import datasets, inference, metrics, params, tracking
from pipeline.search.plan import Plan
from pipeline.search.records import BestModel

log = logging.getLogger("pipeline")
TEXT_EXAMPLES = ("A wonderful, moving film.", "Two hours I will never get back.")


def publish_best(plan: Plan, study: optuna.Study, workdir: Path, classes: tuple) -> str | None:
    """Log and register the best model the workers kept; returns its model URI."""
    minimize = metrics.lower_is_better(metrics.val_metric(plan.dataset.task))
    picked = BestModel.pick(workdir, minimize)
    if picked is None:
        return None
    path, about = picked
    trial = study.trials[about["trial"]]
    options = params.data_options(trial.user_attrs.get("representation", {}))
    fitted = datasets.fitted_for(plan.dataset, options)
    task = plan.dataset.task
    bundle = inference.save_bundle(workdir / "bundle", path, fitted, task, classes)
    from pipeline.tracking import models  # deferred: MLflow's model API costs seconds to import

    value = (metrics.val_metric(task), about["value"], minimize)
    run_id = trial.user_attrs[tracking.RUN_ID_ATTR]
    uri = models.log_model(
        plan.stores.tracking, run_id, bundle, example_input(fitted), plan.study, value
    )
    log.info("best model (trial %d) registered as %s", trial.number, uri)
    return uri


def example_input(fitted: datasets.Fitted) -> pd.DataFrame:
    """Two raw inputs: texts, or rows of raw feature values (the training means)."""
    if fitted.text is not None:
        return pd.DataFrame({inference.TEXT_COLUMN: list(TEXT_EXAMPLES)})
    rows = [fitted.mean, fitted.mean + fitted.std]
    return pd.DataFrame(rows, columns=list(fitted.columns)).astype("float64")
