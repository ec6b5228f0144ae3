"""The options more than one command takes, declared once (Typer's `Annotated` aliases),
and the groups they form as the engine's values: the stores, CSV reading, placement."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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
