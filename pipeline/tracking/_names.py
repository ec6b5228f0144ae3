"""The names a study's MLflow runs carry: run statuses, trial states, tags, the model's
artifact folder, and the Optuna trial attribute that points to a trial's run."""

from __future__ import annotations

import json
from urllib.parse import quote

# MLflow 3's UI opens an experiment on its GenAI overview unless this tag says it trains
# models; with it, the experiment opens on its runs table (checked in headless Chromium).
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")

FINISHED, FAILED, KILLED, RUNNING = "FINISHED", "FAILED", "KILLED", "RUNNING"  # run statuses
COMPLETE, PRUNED, FAIL = "COMPLETE", "PRUNED", "FAIL"  # trial states (tag TRIAL_STATE)
RUN_ID_ATTR = "mlflow_run_id"  # the Optuna trial attribute naming its MLflow run

# Tags: the study and kind of every run; a trial run's number and Optuna state (RUNNING,
# COMPLETE, PRUNED, FAIL), its error and worker; a parent run's best and Pareto trials.
STUDY, KIND, OBJECTIVES, DEVICE = "study", "kind", "objectives", "device"
BACKEND = "backend"  # the Keras backend a run trained on (tensorflow, jax, torch)
TRIAL_NUMBER, TRIAL_STATE, ERROR, WORKER_PID = "trial_number", "trial_state", "error", "worker_pid"
BEST_RUN_ID, PARETO_TRIALS, ENQUEUED = "best_run_id", "pareto_trials", "enqueued"
WORKERS, ARTIFACTS_ERROR, BEST_MODEL_URI = "workers", "artifacts_error", "best_model_uri"
HOST, PID, ALIVE_AT = "host", "pid", "alive_at"  # a parent run's invocation, and when it last beat
ENSEMBLE = "ensemble"  # the kind (tag KIND) of a run that logs an ensemble of trials
ENSEMBLE_MEMBERS = "ensemble_members"  # on it: "TRIAL:PICKS" of each member, best first
KEPT_MODEL = "kept_model"  # "true" on a trial run whose model is kept as its artifact MODEL_DIR
MODEL_DIR = "model"  # a kept trial's model.keras, among its run's artifacts
PARENT_RUN_ID = "mlflow.parentRunId"
# MLflow's UI reads a saved view of an experiment's runs table from the experiment tag
# "mlflow.sharedViewState.KEY", opened by `?viewStateShareKey=KEY`; `workflowType` picks its
# model-training pages over its GenAI ones (MLflow 3.17 ignores EXPERIMENT_KIND)
TRIALS_VIEW = "trials"
MODEL_TRAINING = "workflowType=machine_learning"
LOCAL_UI = "http://127.0.0.1:5000"  # `pipeline ui`'s default


def ui_base(tracking_uri: str) -> str:
    """Where the MLflow UI of a tracking store is: the tracking server itself, else
    `pipeline ui` on this machine."""
    return tracking_uri.rstrip("/") if tracking_uri.startswith(("http:", "https:")) else LOCAL_UI


def runs_page(base: str, experiment_id: str) -> str:
    """An experiment's runs table in the model-training view, on the saved trials view."""
    view = f"viewStateShareKey={TRIALS_VIEW}"
    return f"{base}/#/experiments/{experiment_id}/runs?{MODEL_TRAINING}&{view}"


def compare_page(base: str, experiment_id: str, run_ids: list[str]) -> str:
    """MLflow's comparison of runs: parameters against a metric (parallel coordinates,
    scatter and contour plots)."""
    runs = quote(json.dumps(run_ids, separators=(",", ":")))
    experiments = quote(json.dumps([experiment_id], separators=(",", ":")))
    return f"{base}/#/compare-runs?runs={runs}&experiments={experiments}&{MODEL_TRAINING}"


# A trial run's single figures, as tags: as metrics, MLflow's UI drew each as a chart of
# one bar. Read back as numbers (`trial_record.from_run`).
FIGURES = ("n_params", "latency_ms", "train_seconds", "epochs_run", "best_epoch")
PRUNED_FLAG = "pruned"  # "true" on a pruned trial's run (its MLflow status is FINISHED)
