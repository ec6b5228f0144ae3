"""The only package that talks to MLflow: experiments, parent/child runs, metrics, artifacts.

- `_names`: what a study's runs carry (statuses, trial states, tags).
- `_connection`: reaching a store (MLflow kept quiet, a server's requests bounded, a store
  that cannot be opened in one line).
- `_tracker`: `Tracker`, a study's runs written, read back and deleted.
- `models`: the pyfunc model of the end-to-end bundle and its registration (imported on
  its own: MLflow's model API costs seconds to import).
"""

from __future__ import annotations

from pipeline.tracking._connection import (
    HTTP_BOUNDS,
    PROBE_TIMEOUT,
    bound_http,
    quiet,
    store_trouble,
)
from pipeline.tracking._names import (
    ALIVE_AT,
    ARTIFACTS_ERROR,
    BACKEND,
    BEST_MODEL_URI,
    BEST_RUN_ID,
    COMPLETE,
    DEVICE,
    ENQUEUED,
    ENSEMBLE,
    ENSEMBLE_MEMBERS,
    ERROR,
    EXPERIMENT_KIND,
    FAIL,
    FAILED,
    FIGURES,
    FINISHED,
    HOST,
    KEPT_MODEL,
    KILLED,
    KIND,
    LOCAL_UI,
    MODEL_DIR,
    OBJECTIVES,
    PARENT_RUN_ID,
    PARETO_TRIALS,
    PID,
    PRUNED,
    PRUNED_FLAG,
    RUN_ID_ATTR,
    RUNNING,
    STUDY,
    TRIAL_NUMBER,
    TRIAL_STATE,
    TRIALS_VIEW,
    WORKER_PID,
    WORKERS,
    compare_page,
    runs_page,
    ui_base,
)
from pipeline.tracking._tracker import Tracker

__all__ = [
    "ALIVE_AT", "ARTIFACTS_ERROR", "BACKEND", "BEST_MODEL_URI", "BEST_RUN_ID", "COMPLETE",
    "DEVICE", "ENQUEUED", "ENSEMBLE", "ENSEMBLE_MEMBERS", "ERROR", "EXPERIMENT_KIND", "FAIL",
    "FAILED", "FIGURES", "FINISHED",
    "HOST", "HTTP_BOUNDS", "KEPT_MODEL", "KILLED", "KIND", "LOCAL_UI", "MODEL_DIR", "OBJECTIVES",
    "PARENT_RUN_ID", "PARETO_TRIALS", "PID", "PROBE_TIMEOUT", "PRUNED", "PRUNED_FLAG",
    "RUN_ID_ATTR", "RUNNING", "STUDY", "TRIAL_NUMBER", "TRIAL_STATE", "TRIALS_VIEW",
    "WORKER_PID", "WORKERS",
    "Tracker", "bound_http", "compare_page", "quiet", "runs_page", "store_trouble", "ui_base",
]  # fmt: skip
