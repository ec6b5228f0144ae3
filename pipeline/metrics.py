"""Metric names, which way is better, and the second objectives: the one owner of each."""

from __future__ import annotations

import math

from pipeline.errors import UserError

# `--objective accuracy,params`: the second objective's name -> the metric a trial logs
SECOND_OBJECTIVES = {"params": "n_params", "latency": "latency_ms"}
_LOWER_IS_BETTER = ("loss", "mae", "mse", "n_params", "latency", "seconds")
TASK_METRICS = ("accuracy", "mae")  # what a task is judged by: classification, regression


def task_metric(task: str) -> str:
    """The metric a task is judged by: MAE for regression, accuracy for classification."""
    classification, regression = TASK_METRICS
    return regression if task == "regression" else classification


def val_metric(task: str) -> str:
    return "val_" + task_metric(task)


def test_metric(val_metric: str) -> str:
    """The test figure of a validation metric: `val_accuracy` -> `test_accuracy`."""
    return "test_" + val_metric.removeprefix("val_")


def lower_is_better(metric: str) -> bool:
    """Any metric name, as logged: `test_loss`, `final_val_mae`, `latency_ms`, ..."""
    return any(word in metric for word in _LOWER_IS_BETTER)


def ranking_key(value: float | None, trial_number: int | None, minimize: bool) -> tuple:
    """The one rule for "best", as a sort key (smallest first): the better value first
    (lower when `minimize`), a tie to the lower trial number; a missing or NaN value, or a
    missing number, after every known one. The summary, the export, the parent run's best
    trial, the studies list and the registered model all rank with it."""
    missing = value is None or math.isnan(value)
    signed = 0.0 if missing else (float(value) if minimize else -float(value))
    return (missing, signed, math.inf if trial_number is None else int(trial_number))


def direction(metric: str) -> str:
    """Optuna's word for `metric`."""
    return "minimize" if lower_is_better(metric) else "maximize"


def parse_objectives(task: str, spec: str | None) -> tuple[str, ...]:
    """`--objective`: the task's metric alone, or with `params` or `latency` (minimized)."""
    metric = task_metric(task)
    names = tuple(n.strip() for n in (spec or metric).split(","))
    if names[0] != metric or len(names) > 2 or any(n not in SECOND_OBJECTIVES for n in names[1:]):
        raise UserError(f"--objective {spec!r}: use {metric}, {metric},params or {metric},latency")
    return names


def logged_metric(objective: str) -> str:
    """The metric an objective reads: `params` -> `n_params`; the task's metric as itself."""
    return SECOND_OBJECTIVES.get(objective, objective)


def directions(objectives: tuple[str, ...]) -> list[str]:
    """Optuna's directions for a study's objectives."""
    return [direction(logged_metric(name)) for name in objectives]
