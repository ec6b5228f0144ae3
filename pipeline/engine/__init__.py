"""The engine: one entry per job. A job (`jobs`) is turned into a plan once (`planner`,
`checks`); the `runner` opens the study and its MLflow parent run (`lifecycle`) and hands
the trials to an executor chosen once (`executors`: this process, worker processes, or
Ray); each runs the trial loop (`trials`), one `objective` call per trial, recorded in
MLflow (`records`), its predictions kept and its model while among the best (`kept`),
the best published (`publish`), an ensemble of the kept ones chosen (`ensemble`).
`housekeeping` lists and deletes studies."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pipeline import settings
from pipeline.engine.jobs import (
    EnsembleJob,
    Placement,
    PredictJob,
    ReproduceJob,
    SearchJob,
    StoreOptions,
    TrainJob,
)
from pipeline.errors import Interrupted, TrainingDiverged, UserError

if TYPE_CHECKING:
    from pipeline.engine.ensembling import Ensemble
    from pipeline.engine.outcome import Outcome

# Imported when first used: a command pays only for the modules it runs (`pipeline
# studies` loads no Keras, `pipeline predict` no Optuna sampler or plotting)
_LAZY = {
    "Ensemble": "pipeline.engine.ensembling",
    "Outcome": "pipeline.engine.outcome",
    "RayOptions": "pipeline.engine.plan",
    "delete_study": "pipeline.engine.housekeeping",
    "study_summaries": "pipeline.engine.housekeeping",
    "study_summary": "pipeline.engine.housekeeping",
    "finished": "pipeline.engine.studies",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)


def search(job: SearchJob) -> Outcome:
    """Plan the search, then bring its study to `job.n_trials` finished trials."""
    from pipeline.engine import planner, runner

    return runner.run(planner.search_plan(job))


def reproduce(job: ReproduceJob) -> tuple[Outcome, str]:
    """Train a seed table's rows; the outcome and the markdown comparison."""
    from pipeline.engine import planner, reproduction

    return reproduction.reproduce(planner.reproduce_plan(job))


def train(job: TrainJob) -> tuple[str, Any]:
    """Train one configuration; its MLflow run id and its training result."""
    from pipeline.engine import planner, train_run

    return train_run.train_once(planner.train_plan(job))


def ensemble(job: EnsembleJob) -> Ensemble:
    """Choose again the ensemble of a finished study's kept trials (another size, say);
    register it when it beats the best trial on validation rows that did not choose it."""
    from pipeline import tracking, trial_record
    from pipeline.engine import ensembling, studies

    if job.size < 1:
        raise UserError(f"--size must be at least 1, got {job.size}")
    study = studies.load_existing(settings.storage_url(job.storage), job.study)
    tracker = tracking.Tracker(settings.tracking_uri(job.tracking_uri))
    runs = [r.run_id for r in trial_record.study_records(study) if r.run_id]
    if not runs:
        raise UserError(f"study {job.study!r} has no trial runs to choose an ensemble from")
    experiment = tracker.experiment_of(runs[0])
    chosen = ensembling.build(study, tracker, experiment=experiment, size=job.size)
    if chosen is None:
        raise UserError(
            f"study {job.study!r}: fewer than two completed trials kept their validation "
            "predictions and model (a study searched before ensembles were kept has none)"
        )
    return chosen


def predict(job: PredictJob) -> str:
    """Raw inputs through a logged model, rendered as `job.fmt`."""
    from pipeline.engine import prediction_run

    return prediction_run.predict(job)


__all__ = [
    "Ensemble",
    "EnsembleJob",
    "Interrupted",
    "Outcome",
    "Placement",
    "PredictJob",
    "RayOptions",
    "ReproduceJob",
    "SearchJob",
    "StoreOptions",
    "TrainJob",
    "TrainingDiverged",
    "delete_study",
    "ensemble",
    "finished",
    "predict",
    "reproduce",
    "search",
    "study_summaries",
    "study_summary",
    "train",
]
