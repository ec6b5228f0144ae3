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
    dataset: str | None = None,
    *,
    x: Any = None,
    y: Any = None,
    validation_data: tuple | None = None,
    validation_split: float | None = None,
    test_data: tuple | None = None,
    task: str | None = None,
    space: Space = None,
    builder: Callable | None = None,
    n_trials: int = 30,
    show: bool = True,
    **options: Any,
) -> Outcome:
    """Run a search as `pipeline search DATASET` does. `space`: a dict, a YAML file or a
    name; `builder`: a function of yours (a cell's), `build(params, inputs)` or Keras
    Tuner's `build_model(hp)`, for a space of your own model; `options`: the other fields
    of `pipeline.engine.SearchJob` (workers, study, storage, tracking_uri, backend,
    timeout, seed, sampler, ...); `show`: print the summary `pipeline search` prints.

    Arrays instead of a dataset's name: `x` and `y` (or `x` a tf.data.Dataset or PyDataset
    of `(x, y)` batches), `validation_data=(x_val, y_val)` or `validation_split` (0.2),
    `test_data=(x_test, y_test)` (else a seeded fifth of `x` is held out), `task` (else
    told from `y`); `dataset` then names them (default "arrays").

    Returns the outcome: `.best_model()` (the registered best Keras model), `.best_params`,
    `.trials` (a frame, best first), `.summary`, `.study` (Optuna's), `.parent_run_id`,
    `.model_uri`, `.ensemble` (the ensemble of the kept trials: members, figures, and its
    model URI when it won)."""
    from pipeline import datasets, engine, tracking
    from pipeline.errors import UserError

    tracking.quiet(options.get("verbose", False))
    if x is not None:
        if builder is None:
            raise UserError("arrays need a model of yours: builder=build_model")
        dataset = datasets.from_arrays(
            dataset or "arrays",
            x=x,
            y=y,
            validation_data=validation_data,
            validation_split=validation_split,
            test_data=test_data,
            task=task,
        )
        space = _arrays_space(space)
    elif dataset is None:
        raise UserError("name a dataset, or give arrays: x=..., y=...")
    job = engine.SearchJob(
        dataset=dataset, space=space, builder=builder, n_trials=n_trials, **options
    )
    outcome = engine.search(job)
    if show:
        print(outcome.summary)
    return outcome


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


ARRAYS_DEFAULTS = {"epochs": 10, "batch_size": 32}  # a space for arrays that names none


def _arrays_space(space: Space) -> Space:
    """The space of a search on arrays: they reach the model as they are."""
    if space is None:
        return {"representation": "arrays", "defaults": dict(ARRAYS_DEFAULTS)}
    if isinstance(space, dict) and "representation" not in space:
        return {**space, "representation": "arrays"}
    return space


def __getattr__(name: str) -> Any:
    """`SearchResult`: what `search` returns, the engine's `Outcome` (imported when asked)."""
    if name == "SearchResult":
        from pipeline.engine import Outcome

        return Outcome
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
