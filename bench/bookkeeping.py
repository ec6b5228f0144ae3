"""Where a study's trial spends the time it does not train: seed-recipe trials of a real
search (real IMDB, SQLite stores in a temporary folder), with every MLflow call (the
project's Tracker) and every Optuna storage call timed, on the main thread and on the
thread that draws each trial's files (a trial's files are drawn while the next one trains).
A call timed inside another (the pruner's Optuna writes during training) counts for itself
only. Prints one JSON line: means over the trials after the first (which pays TensorFlow's
first-use costs), in milliseconds per trial, which add up to the trial's wall time.
`--without-files` draws and logs no trial files, to show what their thread costs the
trials beside it.

    PIPELINE_DATA_DIR=../shared/data python bench/bookkeeping.py [--trials 6] [--without-files]
"""

from __future__ import annotations

import argparse
import collections
import functools
import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
SPACE = "defaults: {units: [16, 16], loss: binary_crossentropy, epochs: 4, batch_size: 512}\n"
MLFLOW = ("start_run", "log_params", "log_datasets", "log_metrics", "set_tags", "end_run")
OPTUNA = (
    "create_new_trial",
    "set_trial_param",
    "set_trial_user_attr",
    "set_trial_intermediate_value",
    "set_trial_state_values",
    "get_trial",
    "get_all_trials",
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--without-files", action="store_true")
    args = parser.parse_args()
    import optuna

    from pipeline import datasets, engine, tracking, training
    from pipeline.engine import objective, records

    for name in MLFLOW:
        _time(tracking.Tracker, name, "mlflow")
    _time(tracking.Tracker, "log_artifacts", "files")
    for name in OPTUNA:
        _time(optuna.storages.RDBStorage, name, "optuna")
    _time(records, "write_trial_files", "files")
    _time(training, "train_and_evaluate", "training")
    _time(objective.Objective, "__call__", "objective")  # its own work: summary, best model
    if args.without_files:
        records.TrialRecorder._files = lambda *_: None
    datasets.load_dataset("imdb")  # read (or build) the cache outside the timings
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "recipe.yaml").write_text(SPACE + "search: {}\n")
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db"
        os.environ["PIPELINE_STORAGE"] = f"sqlite:///{tmp}/optuna.db"
        options = engine.SearchJob(
            dataset="imdb",
            space=Path(tmp) / "recipe.yaml",
            n_trials=args.trials,
            pruner="none",
            timeout=None,
        )
        engine.search(options)
        study = optuna.load_study(study_name=None, storage=os.environ["PIPELINE_STORAGE"])
    later = sorted(study.trials, key=lambda t: t.number)[1:]
    walls = [(t.datetime_complete - t.datetime_start).total_seconds() for t in later]
    labels = sorted({label for _, label in SECONDS})
    per_trial = {
        f"{label}_ms": statistics.mean(SECONDS[t.number, label] for t in later) * 1000
        for label in labels
    }
    print(json.dumps({"trials": len(later), "trial_s": statistics.mean(walls)} | per_trial))


SECONDS: dict[tuple[int, str], float] = collections.defaultdict(float)  # (trial, label)
CURRENT = [0]  # the number of the trial the main thread runs
NESTED = threading.local()  # per thread: the seconds of timed calls inside the open ones


def _time(owner, name: str, label: str) -> None:
    """Wrap `owner.name` to add its wall time to the current trial's `label` (with
    "_background" off the main thread)."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def timed(*args, **kwargs):
        if name == "__call__":  # Objective.__call__(self, trial)
            CURRENT[0] = args[1].number
        stack = NESTED.__dict__.setdefault("stack", [])
        stack.append(0.0)
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent = time.perf_counter() - start
            inner = stack.pop()
            if stack:
                stack[-1] += spent
            main = threading.current_thread() is threading.main_thread()
            key = label if main else f"{label}_background"
            SECONDS[CURRENT[0], key] += spent - inner

    setattr(owner, name, timed)


if __name__ == "__main__":
    main()
