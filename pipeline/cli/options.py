"""The options more than one command takes, declared once (Typer's `Annotated` aliases),
and the groups they form as the engine's values: the stores, CSV reading, placement."""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from pipeline.errors import UserError

DATASET_HELP = "A dataset `pipeline datasets` lists, folder:PATH or csv:PATH."

Dataset = Annotated[str, typer.Argument(help=DATASET_HELP)]
AsJson = Annotated[bool, typer.Option("--json", help="Print a JSON list.")]
Output = Annotated[Path | None, typer.Option(help="Write here instead of printing.")]
Port = Annotated[int, typer.Option(help="Port on 127.0.0.1.")]
Verbose = Annotated[bool, typer.Option(help="Show Keras epochs and Optuna logs.")]

# the stores
Storage = Annotated[str | None, typer.Option(help="Optuna storage URL.")]
TrackingUri = Annotated[str | None, typer.Option(help="MLflow tracking URI.")]
StoreWait = Annotated[
    float | None,
    typer.Option(
        help="Seconds a store that goes away (a database or tracking server restarting) is "
        "waited for before the command stops (default 60, or PIPELINE_STORE_WAIT)."
    ),
]

# placement: where and on what the trials train
Workers = Annotated[int, typer.Option(help="Worker processes on this machine.")]
Backend = Annotated[
    str | None,
    typer.Option(help="Keras backend: tensorflow (default), jax or torch (or KERAS_BACKEND)."),
]
RayAddress = Annotated[
    str | None,
    typer.Option(
        "--ray",
        help="Place the workers with Ray: local (a private Ray for this command), auto "
        "(the cluster this machine joined) or HOST:PORT / ray://HOST:PORT.",
    ),
]
CpusPerWorker = Annotated[
    float | None, typer.Option(help="With --ray: CPUs per worker (default: the cluster's / N).")
]
GpusPerWorker = Annotated[
    float, typer.Option(help="With --ray: GPUs per worker; 0.25 lets four share one GPU.")
]

# reading a csv: dataset
TextCol = Annotated[str | None, typer.Option(help="csv:PATH: the text column (a text dataset).")]
LabelCol = Annotated[str | None, typer.Option(help="csv:PATH: the label column.")]
FeatureCols = Annotated[
    str | None, typer.Option(help="csv:PATH tables: feature columns, a,b,c (default: all).")
]
Task = Annotated[
    str | None, typer.Option(help="csv:PATH tables: regression, binary or multiclass.")
]
KFolds = Annotated[
    int | None, typer.Option(help="csv:PATH tables: folds (0: a held-out validation split).")
]


@dataclass(frozen=True)
class Group:
    """Options that travel together, declared once: each is (name, annotated type, default);
    `build` turns their values into the one value a command receives."""

    options: tuple[tuple[str, Any, Any], ...]
    build: Callable[..., Any]


def grouped(**groups: Group) -> Callable:
    """A command's parameter `NAME` annotated with nothing is replaced, in what Typer sees,
    by the options of `groups[NAME]`; the command receives the group's one built value.
    Written here because Typer has no option groups (it reads a function's signature)."""

    def decorate(command: Callable) -> Callable:
        signature = inspect.signature(command, eval_str=True)
        hints = typing.get_type_hints(command, include_extras=True)
        parameters = []
        for parameter in signature.parameters.values():
            if parameter.name not in groups:
                parameters.append(parameter.replace(annotation=hints[parameter.name]))
                continue
            parameters += [
                inspect.Parameter(
                    name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=kind
                )
                for name, kind, default in groups[parameter.name].options
            ]

        @functools.wraps(command)
        def wrapper(**given: Any) -> Any:
            for name, group in groups.items():
                values = {option: given.pop(option) for option, _, _ in group.options}
                given[name] = group.build(**values)
            return command(**given)

        del wrapper.__wrapped__  # Typer must read the new signature, not the command's
        wrapper.__signature__ = signature.replace(parameters=parameters)
        wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
        return wrapper

    return decorate


def csv_options(
    *,
    text_col: str | None = None,
    label_col: str | None = None,
    feature_cols: str | None = None,
    task: str | None = None,
    k_folds: int | None = None,
):
    """The CSV options of a command, as one value (`pipeline.datasets.CsvOptions`)."""
    from pipeline.datasets import CsvOptions

    features = tuple(c.strip() for c in (feature_cols or "").split(",") if c.strip())
    return CsvOptions(text_col, label_col, features, task, k_folds)


def ray_options(*, address: str | None, cpus: float | None, gpus: float):
    """`--ray` and its shares, or None (local worker processes; Ray is not imported)."""
    from pipeline.engine import RayOptions

    if address is None:
        if cpus is not None or gpus:
            raise UserError("--cpus-per-worker and --gpus-per-worker go with --ray ADDRESS")
        return None
    return RayOptions(address, cpus, gpus)


def _stores(*, storage=None, tracking_uri=None, store_wait=None):
    from pipeline.engine import StoreOptions

    return StoreOptions(storage=storage, tracking_uri=tracking_uri, store_wait=store_wait)


def _placement(*, workers, backend, ray, cpus_per_worker, gpus_per_worker, verbose):
    from pipeline.engine import Placement

    shares = ray_options(address=ray, cpus=cpus_per_worker, gpus=gpus_per_worker)
    return Placement(workers=workers, ray=shares, backend=backend, verbose=verbose)


STORES = Group(
    options=(
        ("storage", Storage, None),
        ("tracking_uri", TrackingUri, None),
        ("store_wait", StoreWait, None),
    ),
    build=_stores,
)
PLACEMENT = Group(
    options=(
        ("workers", Workers, 1),
        ("backend", Backend, None),
        ("ray", RayAddress, None),
        ("cpus_per_worker", CpusPerWorker, None),
        ("gpus_per_worker", GpusPerWorker, 0.0),
        ("verbose", Verbose, False),
    ),
    build=_placement,
)
CSV = Group(
    options=(
        ("text_col", TextCol, None),
        ("label_col", LabelCol, None),
        ("feature_cols", FeatureCols, None),
        ("task", Task, None),
        ("k_folds", KFolds, None),
    ),
    build=csv_options,
)
