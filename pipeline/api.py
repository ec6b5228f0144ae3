"""The same jobs from Python (a notebook): `pipeline.search(...)` and `pipeline.train(...)`
build the jobs that the command line builds, from the same options, and hand them to the
same entries of the engine."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # Optuna and the engine are imported when a search starts
    from pipeline.engine import Outcome

Space = dict | str | Path | None  # a mapping, a YAML file, a name in search_spaces/


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
) -> Outcome:
    """Run a search as `pipeline search DATASET` does. `space`: a dict, a YAML file or a
    name; `builder`: a function `build(params, inputs)` of yours (a cell's) for a space of
    your own model; `options`: the other fields of `pipeline.engine.SearchJob` (workers,
    study, storage, tracking_uri, backend, timeout, seed, sampler, ...). Returns the
    outcome: `.study` (Optuna's), `.parent_run_id`, `.model_uri` (the registered best
    model), `.table` (the top trials)."""
    from pipeline import engine, tracking

    tracking.quiet(options.get("verbose", False))
    job = engine.SearchJob(
        dataset=dataset, space=space, builder=builder, n_trials=n_trials, **options
    )
    return engine.search(job)


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
    from pipeline import engine, tracking

    tracking.quiet(verbose)
    job = engine.TrainJob(
        dataset=dataset,
        overrides=dict(params or {}),
        space=space,
        builder=builder,
        seed=seed,
        tracking_uri=tracking_uri,
        backend=backend,
        verbose=verbose,
    )
    run_id, result = engine.train(job)
    return TrainResult(run_id, result.val_metric, result.val_value, result.test, result.model)


def __getattr__(name: str) -> Any:
    """`SearchResult`: what `search` returns, the engine's `Outcome` (imported when asked)."""
    if name == "SearchResult":
        from pipeline.engine import Outcome

        return Outcome
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
