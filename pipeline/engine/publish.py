"""The best model of an invocation, made usable: the trained network bundled with what its
features were fitted with (raw input in), logged as an MLflow model on its trial run,
registered under the study's name, and crowned `champion` when it beats the champion."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import optuna
import pandas as pd

from pipeline import datasets, inference, metrics, params, tracking, trial_record
from pipeline.engine import kept
from pipeline.engine.plan import Plan
from pipeline.metrics import ranking_key

log = logging.getLogger("pipeline")


def best_kept(
    study: optuna.Study,
    tracker: tracking.Tracker,
    minimize: bool,
    folder: Path,
    *,
    download: bool = True,
) -> tuple[Path | None, dict] | None:
    """The best completed trial (by `metrics.ranking_key`) whose model is kept in MLflow
    (`kept`), its model downloaded into `folder`, with its value, trial number and tags.
    Without `download`, a model already published is not downloaded (its path: None)."""
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    ranked = sorted(done, key=lambda t: ranking_key(t.values[0], t.number, minimize))
    for trial in ranked[: 3 * kept.KEEP]:  # the best are kept; older studies may lack some
        run_id = trial_record.read(trial).run_id
        tags = tracker.tags(run_id) if run_id else {}
        if tags.get(tracking.KEPT_MODEL) != "true":
            continue
        about = {"value": trial.values[0], "trial": trial.number, "run_id": run_id, "tags": tags}
        if not download and tags.get(tracking.BEST_MODEL_URI):
            return None, about
        return tracker.download_artifacts(run_id, tracking.MODEL_DIR, folder), about
    return None


def publish_best(
    plan: Plan,
    study: optuna.Study,
    best: tuple[Path, dict] | None,
    workdir: Path,
    classes: Callable[[], tuple],
    tracker: tracking.Tracker,
    parent_id: str | None,
) -> str | None:
    """Log and register `best` (`best_kept`'s choice), unless it was already, and tag the
    parent run with it; returns its model URI. A failure leaves the study's results intact:
    one warning."""
    if best is None:
        return None
    path, about = best
    uri = about["tags"].get(tracking.BEST_MODEL_URI)  # published by an earlier invocation
    if uri is None:
        try:
            uri = _log_and_register(plan, study, best, workdir, classes)
        except Exception as error:
            log.warning("the best model was not logged to MLflow: %s", error)
            return None
        if uri:
            tracker.set_tags(about["run_id"], {tracking.BEST_MODEL_URI: uri})
    if uri and parent_id:
        tracker.set_tags(parent_id, {tracking.BEST_MODEL_URI: uri})
    return uri


def _log_and_register(plan: Plan, study, best: tuple[Path, dict], workdir: Path, classes):
    minimize = metrics.lower_is_better(metrics.val_metric(plan.dataset.task))
    path, about = best
    trial = study.get_trials(deepcopy=False)[about["trial"]]
    record = trial_record.read(trial)
    options = params.data_options(record.representation or {})
    fitted = datasets.fitted_for(plan.dataset, options)
    task = plan.dataset.task
    bundle = path
    if not (path / inference.SETTINGS).is_file():  # kept by an older version: its network
        bundle = inference.save_bundle(
            folder=workdir / "bundle",
            model_path=kept.network_file(path),
            fitted=fitted,
            task=task,
            classes=classes(),
            modules=plan.builder.modules if plan.builder else (),
        )
    from pipeline.tracking import models  # deferred: MLflow's model API costs seconds to import

    value = (metrics.val_metric(task), about["value"], minimize)
    run_id = record.run_id
    plugin = (plan.dataset.distribution,) if plan.dataset.distribution else ()
    files = plan.builder.files() if plan.builder else []
    uri = models.log_model(
        plan.stores.tracking,
        run_id,
        bundle,
        example_input(fitted),
        plan.study,
        value=value,
        requirements=plugin,
        code=files,
    )
    log.info("best model (trial %d) registered as %s", trial.number, uri)
    return uri


def example_input(fitted: datasets.Fitted) -> pd.DataFrame | np.ndarray:
    """Two raw inputs: texts, rows of raw feature values (the training means), or two rows
    of the arrays given from Python (the model takes arrays as `x` held them)."""
    if fitted.example is not None:
        return fitted.example
    if fitted.text is not None:
        return pd.DataFrame({inference.TEXT_COLUMN: list(inference.TEXT_EXAMPLES)})
    return fitted.table.example()
