"""The same searches from Python (a notebook): `pipeline.search(...)` and `pipeline.train(...)`
build the plan that the command line builds, from the same options, and run it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

Space = dict | str | Path | None  # a mapping, a YAML file, a name in search_spaces/


@dataclass(frozen=True)
class SearchResult:
    study: optuna.Study
    parent_run_id: str | None  # the MLflow parent run of this call's trials
    model_uri: str | None  # the registered best model (models:/NAME/VERSION)


@dataclass(frozen=True)
class TrainResult:
    run_id: str  # the MLflow run
    val_metric: str
    val_value: float
    test: dict[str, float]
    model: Any  # the trained keras.Model


def search(
    dataset: str,
    *,
    space: Space = None,
    builder: Callable | None = None,
    n_trials: int = 30,
    **options: Any,
) -> SearchResult:
    """Run a search as `pipeline search DATASET` does. `space`: a dict, a YAML file or a
    name; `builder`: a function `build(params, inputs)` of yours (a cell's) for a space of
    your own model; `options`: the other fields of `SearchOptions` (workers, study,
    storage, tracking_uri, backend, timeout, seed, sampler, ...)."""
    from pipeline import tracking
    from pipeline.engine import SearchOptions, run, search_plan

    tracking.quiet(options.get("verbose", False))
    plan = search_plan(
        SearchOptions(dataset, space=space, n_trials=n_trials, builder=builder, **options)
    )
    outcome = run(plan)
    return SearchResult(outcome.study, outcome.parent_run_id, outcome.model_uri)


def train(
    dataset: str,
    *,
    space: Space = None,
    builder: Callable | None = None,
    params: dict[str, Any] | None = None,
    seed: int = 0,
    tracking_uri: str | None = None,
    backend: str | None = None,
    verbose: bool = False,
) -> TrainResult:
    """Train one configuration, as `pipeline train DATASET key=value ...` does: the space's
    defaults with `params`, logged as one MLflow run."""
    from pipeline import tracking
    from pipeline.engine import train_once, train_plan

    tracking.quiet(verbose)
    plan = train_plan(
        dataset,
        dict(params or {}),
        space,
        seed,
        tracking_uri,
        verbose,
        backend=backend,
        builder=builder,
    )
    run_id, result = train_once(plan)
    return TrainResult(run_id, result.val_metric, result.val_value, result.test, result.model)
