"""What MLflow receives: a trial run's metrics and files, a parent run's summary, and the
best model a worker trained."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import optuna
import pandas as pd

from pipeline import inference, plots, report, tracking, trial_record
from pipeline.engine import studies

log = logging.getLogger("pipeline")


class TrialRecorder:
    """Writes each finished trial's record. Its numbers (per-epoch and final metrics, state,
    status) are written before the trial returns, so a failure there fails that trial. Its
    files (curves, confusion matrix, history, model summary) are drawn on a background thread
    while the next trial trains (about 0.3 s of a 4 s IMDB trial); a failure there is a
    warning naming the trial, and an `artifacts_error` tag on its run."""

    def __init__(self, tracker: tracking.Tracker) -> None:
        self.tracker = tracker
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlflow-files")

    def record(
        self, run_id: str, number: int, result, summary: str | None, state: str, classes: tuple
    ) -> None:
        self.tracker.log_metrics(run_id, result.history, final_metrics(result))
        pruned = {tracking.PRUNED_FLAG: "true"} if state == tracking.PRUNED else {}
        tags = {tracking.TRIAL_STATE: state, **figure_tags(result), **pruned}
        self.tracker.set_tags(run_id, tags)
        self.tracker.end_run(run_id, tracking.FINISHED)
        detached = replace(result, model=None)  # the thread never touches Keras objects
        self.pool.submit(self._files, run_id, number, detached, summary=summary, classes=classes)

    def close(self) -> None:
        """Wait for the files still being written, then stop the thread."""
        self.pool.shutdown(wait=True)  # `_files` reports its own errors

    def _files(self, run_id: str, number: int, result, summary: str | None, classes) -> None:
        try:
            with tempfile.TemporaryDirectory() as tmp:
                write_trial_files(Path(tmp), result, classes, summary)
                self.tracker.log_artifacts(run_id, Path(tmp))
        except Exception as error:  # the trial's numbers are safe; say what is missing
            log.warning("trial %d: its files were not logged to MLflow: %s", number, error)
            with contextlib.suppress(Exception):  # the store is gone: the warning is all we have
                self.tracker.set_tags(run_id, {tracking.ARTIFACTS_ERROR: str(error)})


def dataset_inputs(spec, options, data) -> list[dict[str, str]]:
    """The splits a trial read, as MLflow dataset inputs: the dataset's name and source, and
    a digest of its representation (one digest per vocabulary, n-grams, output mode...)."""
    source_type, source = ("local", str(spec.source.path)) if spec.is_user else spec.source.record()
    splits = {"train": data.train, "validation": data.val, "test": data.test}
    sizes = {k: len(s or ()) for k, s in splits.items()}
    key = json.dumps([spec.name, repr(options), sizes, getattr(spec.source, "digest", "")])
    return [
        {
            "name": spec.name,
            "digest": hashlib.sha256(f"{key}{context}".encode()).hexdigest()[:8],
            "source_type": source_type,
            "source": source,
            "profile": json.dumps(
                {"rows": len(split), "features": int(split.x.shape[1]), "shape": split.x.shape}
            ),
            "context": context,
        }
        for context, split in splits.items()
        if split is not None
    ]


def final_metrics(result) -> dict[str, float]:
    """The validation metrics of the model the trial keeps (its best epoch when it keeps the
    best, else its last), the test metrics of that model, and per-fold values."""
    at = result.best_epoch - 1
    finals = {f"final_{k}": v[at] for k, v in result.history.items() if k.startswith("val_")}
    if len(result.fold_values) > 1:
        finals |= {f"fold_{i}_{result.val_metric}": v for i, v in enumerate(result.fold_values, 1)}
    return finals | result.test


def figure_tags(result) -> dict[str, str]:
    """A trial run's single figures (`tracking.FIGURES`), as tags."""
    values = (
        result.n_params,
        result.latency_ms,
        result.seconds,
        result.epochs_run,
        result.best_epoch,
    )
    return {name: str(value) for name, value in zip(tracking.FIGURES, values, strict=True)}


def write_trial_files(folder: Path, result, class_names: tuple, summary: str | None) -> None:
    """history.csv, learning_curves.png, model_summary.txt and confusion_matrix.png."""
    frame = pd.DataFrame(result.history)
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="epoch")
    frame.to_csv(folder / "history.csv")
    metric = result.val_metric.removeprefix("val_")
    plots.learning_curves(result.history, metric, folder / "learning_curves.png")
    if summary is not None:
        (folder / "model_summary.txt").write_text(summary)
    if result.test_pred is not None and class_names:
        predicted = _classes(result.test_pred)
        path = folder / "confusion_matrix.png"
        plots.confusion_matrix(result.test_true, predicted, class_names, path)


def model_summary(model) -> str:
    buffer = io.StringIO()
    model.summary(print_fn=lambda line, **_: buffer.write(line + "\n"))
    return buffer.getvalue()


def _classes(pred: np.ndarray) -> np.ndarray:
    return pred.argmax(axis=1) if pred.shape[1] > 1 else (pred[:, 0] > 0.5).astype(int)


def _best_so_far(study: optuna.Study, path: Path, minimize: bool) -> None:
    """The best validation value after each finished trial, beside the recipe's."""
    done = studies.completed(study)
    if studies.is_multi(study) or not done:
        return
    pick = min if minimize else max
    best = [pick(t.values[0] for t in done[: i + 1]) for i in range(len(done))]
    recipe = studies.recipe_trial(done)
    metric = trial_record.study_metric(study)
    references = {"recipe (seed notebook)": recipe.values[0]} if recipe else {}
    plots.best_so_far(
        {"this search": (list(range(1, len(done) + 1)), best)}, metric, path, references
    )


def record_parent(
    tracker: tracking.Tracker,
    parent_id: str,
    study: optuna.Study,
    table,
    workdir: Path,
    minimize: bool,
    best: tuple[Path, dict] | None,
    importances: bool = True,
) -> None:
    """Best params and value (two objectives: the Pareto front's trials and the best of the
    first objective among them), study plots, the top-trials table and the best model.
    `importances`: draw parameter importances (fANOVA: about a second)."""
    trial = studies.best_trial(study)
    if trial is None:  # no completed trial
        return
    if studies.is_multi(study):
        front = sorted(t.number for t in study.best_trials)
        tracker.set_tags(parent_id, {tracking.PARETO_TRIALS: ",".join(map(str, front))})
        tracker.log_metrics(parent_id, values={"pareto_size": len(front)})
    tracker.log_params(parent_id, {f"best_{k}": v for k, v in trial.params.items()})
    tracker.log_metrics(
        parent_id, values={"best_value": trial.values[0], "best_trial": trial.number}
    )
    tracker.set_tags(parent_id, {tracking.BEST_RUN_ID: trial_record.read(trial).run_id or ""})
    folder = workdir / "parent"
    folder.mkdir(exist_ok=True)
    study_plots(study, folder, importances)
    _best_so_far(study, folder / "best_so_far.png", minimize)
    (folder / "top_trials.md").write_text(report.to_text(table) + "\n")
    if best is not None:  # the best kept model (`publish.best_kept`)
        network = best[0] / inference.MODEL if best[0].is_dir() else best[0]  # in its bundle
        shutil.copy(network, folder / "best_model.keras")
    tracker.log_artifacts(parent_id, folder)


def study_plots(study: optuna.Study, folder: Path, importances: bool = True) -> list[Path]:
    """Optuna's optimization history and (when computable and asked for) parameter
    importances; with two objectives, of the first one, and the Pareto front."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")  # Optuna draws with pyplot; no display here
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as ovm

    names = trial_record.study_objectives(study) or ["value"]
    first = {}
    drawn = {"optimization_history": ovm.plot_optimization_history}
    if importances:
        drawn["param_importances"] = ovm.plot_param_importances
    if len(study.directions) > 1:
        first = {"target": lambda t: t.values[0], "target_name": names[0]}
        drawn["pareto_front"] = lambda s, **_: ovm.plot_pareto_front(s, target_names=names)
    saved = []
    for name, plot in drawn.items():
        try:
            with warnings.catch_warnings():  # "experimental" and small-sample notes
                warnings.simplefilter("ignore")
                ax = plot(study, **first)
        except (ValueError, RuntimeError, ZeroDivisionError):  # too few finished trials
            continue
        figure = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
        saved.append(plots.save(figure, folder / f"{name}.png"))
        plt.close(figure)
    return saved
