"""What a user asks for, one frozen settings object per job (search, reproduce, train,
predict): the command line and `pipeline.search()` / `pipeline.train()` build the same
objects, with keyword arguments only, and hand them to the engine's one entry per job.
Nothing here is checked yet: the `planner` checks a job once, as it turns it into a plan."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.settings import ENSEMBLE_SIZE, KEEP

if TYPE_CHECKING:  # a job is built before its command needs the data or the engine
    from pipeline.datasets import CsvOptions, Spec
    from pipeline.engine.plan import RayOptions

SpaceChoice = str | Path | dict | None  # a file, a name in search_spaces/, a mapping (Python)


@dataclass(frozen=True, kw_only=True)
class StoreOptions:
    """Where a study is written (None: `PIPELINE_STORAGE`, `MLFLOW_TRACKING_URI` or the
    SQLite files under mlruns/), and how long a store that goes away is waited for."""

    storage: str | None = None  # the Optuna storage URL
    tracking_uri: str | None = None  # the MLflow tracking URI
    store_wait: float | None = None  # seconds (None: PIPELINE_STORE_WAIT, else 60)


@dataclass(frozen=True, kw_only=True)
class Placement:
    """Where and how the trials train: worker processes on this machine or Ray, on which
    Keras backend, and whether Keras and Optuna speak."""

    workers: int = 1
    ray: RayOptions | None = None  # `--ray ADDRESS`: the workers placed by Ray
    backend: str | None = None  # Keras' backend (None: KERAS_BACKEND, else TensorFlow)
    verbose: bool = False


@dataclass(frozen=True, kw_only=True)
class SearchJob(StoreOptions, Placement):
    """`pipeline search`: an Optuna study over a space, every trial an MLflow run."""

    dataset: str | Spec  # a name, or arrays given from Python (`datasets.from_arrays`)
    space: SpaceChoice = None
    builder: Callable | None = None  # a custom space's build function, given from Python
    csv: CsvOptions | None = None  # how to read a csv: dataset
    n_trials: int = 30
    timeout: float | None = 600
    study: str | None = None
    sampler: str = "tpe"
    pruner: str = "median"
    seed: int = 0
    heartbeat: int = 10
    objective: str | None = None  # "accuracy" (or "mae"), or two: "accuracy,params|latency"
    warm_start: tuple[str, ...] = ()  # seed tables, or study:NAME (its best trials)
    keep: int = KEEP  # the best trials whose bundle is kept (the ensemble's pool)
    ensemble_size: int = ENSEMBLE_SIZE  # greedy picks of the ensemble; 0: no ensemble


@dataclass(frozen=True, kw_only=True)
class ReproduceJob(StoreOptions, Placement):
    """`pipeline reproduce`: every row of a seed table trained `seeds` times."""

    table: str  # a table's name in search_spaces/tables/, or a YAML file
    seeds: int = 3
    study: str | None = None  # default: reproduce-TABLE


@dataclass(frozen=True, kw_only=True)
class TrainJob:
    """`pipeline train`: one configuration, the space's defaults with `overrides`."""

    dataset: str
    overrides: dict[str, Any]
    space: SpaceChoice = None
    builder: Callable | None = None
    csv: CsvOptions | None = None
    seed: int = 0
    tracking_uri: str | None = None
    backend: str | None = None
    verbose: bool = False


@dataclass(frozen=True, kw_only=True)
class EnsembleJob:
    """`pipeline ensemble`: an ensemble chosen again from a finished study's kept trials."""

    study: str
    size: int = ENSEMBLE_SIZE
    storage: str | None = None
    tracking_uri: str | None = None


@dataclass(frozen=True, kw_only=True)
class PredictJob:
    """`pipeline predict`: raw inputs through a logged model."""

    model: str  # a dataset or study name (its champion), or an MLflow model URI
    texts: tuple[str, ...] = ()
    file: Path | None = None  # one text a line, or a CSV
    fmt: str = "table"  # table, json or csv
    csv: CsvOptions | None = None  # how the dataset's name reads (csv: datasets)
    tracking_uri: str | None = None
