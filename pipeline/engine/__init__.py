"""The engine: one entry per job. A job (`jobs`) is turned into a plan once (`planner`,
`checks`); the `runner` opens the study and its MLflow parent run (`lifecycle`) and hands
the trials to an executor chosen once (`executors`: this process, worker processes, or
Ray); each runs the trial loop (`trials`), one `objective` call per trial, recorded in
MLflow (`records`), its model kept while among the best (`kept`), the best published
(`publish`). `housekeeping` lists and deletes studies."""

from __future__ import annotations

from typing import Any

from pipeline.engine import planner, prediction_run, reproduction, runner, train_run
from pipeline.engine.housekeeping import delete_study, study_summaries, study_summary
from pipeline.engine.jobs import (
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
from pipeline.errors import Interrupted, TrainingDiverged


def search(job: SearchJob) -> Outcome:
    """Plan the search, then bring its study to `job.n_trials` finished trials."""
    return runner.run(planner.search_plan(job))


def reproduce(job: ReproduceJob) -> tuple[Outcome, str]:
    """Train a seed table's rows; the outcome and the markdown comparison."""
    return reproduction.reproduce(planner.reproduce_plan(job))


def train(job: TrainJob) -> tuple[str, Any]:
    """Train one configuration; its MLflow run id and its training result."""
    return train_run.train_once(planner.train_plan(job))


def predict(job: PredictJob) -> str:
    """Raw inputs through a logged model, rendered as `job.fmt`."""
    return prediction_run.predict(job)


__all__ = [
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
    "finished",
    "predict",
    "reproduce",
    "search",
    "study_summaries",
    "study_summary",
    "train",
]
