"""What a study keeps of its trials in MLflow, as artifacts of their trial runs, written
as each trial ends: whoever trained a trial (this process, a worker process, a Ray worker
on another node), what it keeps outlives it, so a killed driver or a lost worker loses
nothing, and the next invocation can publish a model that was never published.

- Every completed trial keeps its predictions (`predictions/predictions.npz`): the
  validation rows' (out of fold with k-fold validation), which an ensemble is chosen on,
  and the test rows', for reports.
- A trial among its study's best `keep` keeps its end-to-end bundle (`model/`: the
  network and what its features were fitted with, raw input in). A trial that falls out
  of the best `keep` loses its bundle, so the disk a study takes stays bounded."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import optuna

from pipeline import tracking
from pipeline.engine.plan import KEEP
from pipeline.metrics import ranking_key

log = logging.getLogger("pipeline")
MODEL_FILE = "model.keras"
PREDICTIONS_DIR, PREDICTIONS_FILE = "predictions", "predictions.npz"
BundleWriter = Callable[[Path, Path], Path]  # (model file, folder) -> the bundle's folder


class KeptModels:
    """Keeps each completed trial's predictions, and the bundle of each trial that ends
    among its study's best `keep`."""

    def __init__(
        self,
        tracker: tracking.Tracker,
        experiment: str,
        minimize: bool,
        keep: int = KEEP,
        task: str = "",
    ) -> None:
        self.tracker, self.experiment = tracker, experiment
        self.minimize, self.keep, self.task = minimize, keep, task

    def offer(
        self, study: optuna.Study, trial: optuna.Trial, run_id: str, result, bundle: BundleWriter
    ) -> None:
        """`trial` has just completed with `result` (still RUNNING in the storage);
        `bundle` writes its end-to-end bundle."""
        if result.model is None:
            return
        self._keep_predictions(run_id, result)
        done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        best = self.best_numbers(done, extra=(result.val_value, trial.number))
        if trial.number not in best:
            return
        from pipeline.models import for_inference  # deferred: Keras, once the worker started

        with tempfile.TemporaryDirectory() as tmp:
            for_inference(result.model).save(Path(tmp) / MODEL_FILE)
            folder = bundle(Path(tmp) / MODEL_FILE, Path(tmp) / "bundle")
            self.tracker.log_artifacts(run_id, folder, tracking.MODEL_DIR)
        self.tracker.set_tags(run_id, {tracking.KEPT_MODEL: "true"})
        self._drop_others(study.study_name, best, {t.number for t in done})

    def _keep_predictions(self, run_id: str, result) -> None:
        arrays = {"val_true": result.val_true, "val_pred": result.val_pred}
        arrays |= {"test_true": result.test_true, "test_pred": result.test_pred}
        arrays = {k: np.asarray(v) for k, v in arrays.items() if v is not None}
        with tempfile.TemporaryDirectory() as tmp:
            file = Path(tmp) / PREDICTIONS_FILE
            np.savez_compressed(file, member=result.member, task=self.task, **arrays)
            self.tracker.log_artifacts(run_id, Path(tmp), PREDICTIONS_DIR)

    def best_numbers(self, done: list, extra=None) -> set[int]:
        """The numbers of the best `keep` of the completed trials `done` (and `extra`:
        (value, number))."""
        pairs = [(t.values[0], t.number) for t in done] + ([extra] if extra else [])
        ranked = sorted(pairs, key=lambda p: ranking_key(p[0], p[1], self.minimize))
        return {number for _, number in ranked[: self.keep]}

    def _drop_others(self, study: str, best: set[int], done: set[int]) -> None:
        """Remove the bundles of the trials `done` (completed, as this worker sees them) no
        longer among the best. A trial that another worker is finishing now keeps its
        bundle: it is not in `done`, and it may well be the best. This worker may not see
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
            except Exception as error:  # a bundle kept too many wastes disk, nothing more
                log.warning("the model of trial run %s was not removed: %s", run["run_id"], error)


def kept_model(tracker: tracking.Tracker, run_id: str, folder: Path) -> Path | None:
    """The kept model of a trial run, downloaded into `folder`: its bundle's folder (or,
    kept by an older version, its `model.keras` file); None if it has none."""
    if tracker.tags(run_id).get(tracking.KEPT_MODEL) != "true":
        return None
    return tracker.download_artifacts(run_id, tracking.MODEL_DIR, folder)


def network_file(kept: Path) -> Path:
    """The Keras file of what `kept_model` downloaded (a bundle's folder, or the file)."""
    return kept / MODEL_FILE if kept.is_dir() else kept


def kept_predictions(tracker: tracking.Tracker, run_id: str, folder: Path) -> dict | None:
    """A completed trial's predictions (`val_true`, `val_pred`, `test_true`, `test_pred`,
    `member`); None if it kept none (a study of an older version)."""
    try:
        path = tracker.download_artifacts(run_id, f"{PREDICTIONS_DIR}/{PREDICTIONS_FILE}", folder)
    except Exception:  # none logged: MLflow raises its own errors for a missing artifact
        return None
    with np.load(path) as arrays:
        return {k: arrays[k] for k in arrays.files}
