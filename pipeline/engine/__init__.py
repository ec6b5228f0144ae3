"""Searches and seed tables as Optuna studies logged to MLflow: a plan is built once
(`planning`), run by the `runner` here or in `workers`, one `objective` call per trial,
with `records` saying what MLflow receives and `studies` owning the Optuna set-up."""

from pipeline.engine.housekeeping import delete_study, study_summaries, study_summary
from pipeline.engine.planning import SearchOptions, reproduce_plan, search_plan, train_plan
from pipeline.engine.reproduce import reproduce
from pipeline.engine.runner import Outcome, run
from pipeline.engine.studies import finished
from pipeline.engine.train import TrainingDiverged, train_once
from pipeline.errors import Interrupted


def run_search(options: SearchOptions) -> Outcome:
    """`pipeline search` without the command line: plan, then run."""
    return run(search_plan(options))


__all__ = [
    "Interrupted",
    "Outcome",
    "SearchOptions",
    "TrainingDiverged",
    "delete_study",
    "finished",
    "reproduce",
    "reproduce_plan",
    "run",
    "run_search",
    "search_plan",
    "study_summaries",
    "study_summary",
    "train_once",
    "train_plan",
]
