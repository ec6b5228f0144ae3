"""The engine: one entry per job. A job (`jobs`) is turned into a plan once (`planner`,
`checks`); the `runner` opens the study and its MLflow parent run (`lifecycle`) and hands
the trials to an executor chosen once (`executors`: this process, worker processes, or
Ray); each runs the trial loop (`trials`), one `objective` call per trial, recorded in
MLflow (`records`), its predictions kept and its model while among the best (`kept`),
the best published (`publish`), an ensemble of the kept ones chosen (`ensemble`).
`housekeeping` lists and deletes studies."""

from __future__ import annotations

from typing import Any

from pipeline import settings, tracking, trial_record
from pipeline.engine import (
    ensembling,
    planner,
    prediction_run,
    reproduction,
    runner,
    studies,
    train_run,
)
from pipeline.engine.ensembling import Ensemble
from pipeline.engine.housekeeping import delete_study, study_summaries, study_summary
from pipeline.engine.jobs import (
    EnsembleJob,
    Placement,
    PredictJob,
    ReproduceJob,
    SearchJob,
    StoreOptions,
    TrainJob,
)
from pipeline.engine.outcome import Outcome
from pipeline.engine.plan import RayOptions
from pipeline.engine.studies import finished
from pipeline.errors import Interrupted, TrainingDiverged, UserError


def search(job: SearchJob) -> Outcome:
    """Plan the search, then bring its study to `job.n_trials` finished trials."""
    return runner.run(planner.search_plan(job))


def reproduce(job: ReproduceJob) -> tuple[Outcome, str]:
    """Train a seed table's rows; the outcome and the markdown comparison."""
    return reproduction.reproduce(planner.reproduce_plan(job))


def train(job: TrainJob) -> tuple[str, Any]:
    """Train one configuration; its MLflow run id and its training result."""
    return train_run.train_once(planner.train_plan(job))


def ensemble(job: EnsembleJob) -> Ensemble:
    """Choose again the ensemble of a finished study's kept trials (another size, say);
    register it when it beats the best trial on validation rows that did not choose it."""
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
