"""What one invocation runs, as plain picklable values: the planner makes it once from a
job; the runner, and every worker process it starts, execute that plan."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pipeline import builders, params, seed_tables, settings, spaces, tracking, trial_record
from pipeline.datasets import Spec

KEEP, ENSEMBLE_SIZE = settings.KEEP, settings.ENSEMBLE_SIZE


@dataclass(frozen=True)
class Stores:
    storage: str  # the Optuna storage URL
    tracking: str  # the MLflow tracking URI
    wait: float = 60.0  # seconds either store is waited for when it goes away


@dataclass(frozen=True)
class KnownConfig:
    """A configuration to try before sampling (Optuna's `enqueue_trial`): the recipe, a seed
    table's row, a space file's `warm_start` entry, or another study's trial."""

    source: str  # "defaults", "blog-imdb row 3", "study other trial 12", ...
    trial_params: dict[str, Any]  # as the space's Optuna params
    config: dict[str, Any] | None = None  # the whole configuration trained, when known


@dataclass(frozen=True)
class SpaceTrials:
    """Trials sampled from a search space by an Optuna sampler, stopped early by a pruner."""

    kind: ClassVar[str] = "search"
    keep_best_epoch: ClassVar[bool] = True  # `epochs` is a budget: score the best epoch
    importances: ClassVar[bool] = True  # the parent run draws parameter importances
    space: spaces.Space
    sampler: str = "tpe"
    pruner: str = "median"
    seed: int = 0  # of the sampler; trial n trains with seed + n
    known: tuple[KnownConfig, ...] = ()  # tried first, in this order

    def tags(self, objectives: tuple[str, ...]) -> dict[str, str]:
        return {"sampler": self.sampler, tracking.OBJECTIVES: ",".join(objectives)}

    @property
    def warmup_epochs(self) -> int:
        """Epochs before the pruner may stop a trial: a quarter of the shortest budget."""
        low = next((p.low for p in self.space.params if p.name == "epochs" and p.low), None)
        return max(1, int(low or self.space.defaults.get("epochs", 4)) // 4)

    def params_of(self, trial) -> dict[str, Any]:
        """Sampled from the space; an enqueued known configuration trains as it is."""
        sampled = params.suggest(trial, self.space)
        config = trial_record.config_of(trial)
        return params.for_family({**sampled, **config}) if config else sampled

    def seed_of(self, trial) -> int:
        return self.seed + trial.number

    def compared(self) -> list[str]:
        """The logged params the trials differ in: the space's searched ones."""
        return list(dict.fromkeys(p.name for p in self.space.params))

    @property
    def builder(self) -> builders.Builder | None:
        return self.space.builder


@dataclass(frozen=True)
class TableTrials:
    """Every row of a seed table, `replicates` times: a grid over row x replicate."""

    kind: ClassVar[str] = "reproduce"
    keep_best_epoch: ClassVar[bool] = False  # a row trains exactly the epochs it names
    importances: ClassVar[bool] = False  # its params are row numbers: none worth drawing
    known: ClassVar[tuple[KnownConfig, ...]] = ()  # its rows are the grid itself
    warmup_epochs: ClassVar[int] = 1  # no pruner: unused
    table: seed_tables.SeedTable
    replicates: int

    def tags(self, objectives: tuple[str, ...]) -> dict[str, str]:
        return {"sampler": "grid", "table": self.table.name}

    def grid(self) -> dict[str, list[int]]:
        rows = [r.index for r in self.table.rows]
        return {"row": rows, "replicate": list(range(self.replicates))}

    def params_of(self, trial) -> dict[str, Any]:
        index = trial.suggest_categorical("row", self.grid()["row"])
        return self.table.rows[index - 1].params

    def seed_of(self, trial) -> int:
        return trial.suggest_categorical("replicate", self.grid()["replicate"])

    def compared(self) -> list[str]:
        """The logged params the trials differ in: those the table's rows set."""
        return list(dict.fromkeys(k for r in self.table.rows for k in r.params))

    @property
    def builder(self) -> builders.Builder | None:
        return self.table.space.builder if self.table.space else None


@dataclass(frozen=True)
class RayOptions:
    """`--ray ADDRESS --cpus-per-worker C --gpus-per-worker G`: where the workers run
    (None: the cluster's CPUs shared among them; no GPU). Read by `engine.executors.ray_workers`."""

    address: str  # local | auto | HOST:PORT | ray://HOST:PORT
    cpus_per_worker: float | None = None
    gpus_per_worker: float = 0.0


@dataclass(frozen=True)
class Plan:
    """A study to bring to `n_trials` finished trials, logged under one MLflow parent run."""

    study: str
    dataset: Spec
    trials: SpaceTrials | TableTrials
    n_trials: int
    stores: Stores
    objectives: tuple[str, ...]  # the task's metric, and maybe `params` or `latency`
    timeout: float | None = None  # seconds after which no new trial starts
    deadline: float | None = None  # time.time() after which no trial starts (start + timeout)
    workers: int = 1
    heartbeat: int = 10  # seconds; a trial silent for 3 beats is failed and retried
    verbose: bool = False
    parent_params: dict[str, Any] = field(default_factory=dict)
    backend: str = "tensorflow"  # Keras' backend, set in every process before Keras starts
    ray: RayOptions | None = None  # workers placed by Ray; None: local processes
    keep: int = KEEP  # the best trials whose bundle is kept
    ensemble_size: int = ENSEMBLE_SIZE  # picks of the ensemble chosen at the end; 0: none

    @property
    def kind(self) -> str:
        return self.trials.kind

    @property
    def builder(self) -> builders.Builder | None:
        """The user's build function its trials train (a custom space's), with its code."""
        return self.trials.builder

    def seconds_left(self) -> float | None:
        """Until the invocation's deadline, shared by its workers and its own leftover
        trials (None: no deadline; 0: past it)."""
        return None if self.deadline is None else max(0.0, self.deadline - time.time())

    @property
    def tags(self) -> dict[str, str]:
        """Tags of the parent run and of every trial run."""
        tags = {tracking.STUDY: self.study, "pruner": self.pruner, tracking.BACKEND: self.backend}
        return tags | self.trials.tags(self.objectives)

    @property
    def pruner(self) -> str:
        """Optuna prunes single-objective studies only; seed tables train every row whole."""
        if len(self.objectives) > 1 or isinstance(self.trials, TableTrials):
            return "none"
        return self.trials.pruner


@dataclass(frozen=True)
class TrainPlan:
    """One fixed configuration trained once, as one MLflow run (`pipeline train`)."""

    dataset: Spec
    params: dict[str, Any]
    seed: int
    tracking: str
    verbose: bool = False
    backend: str = "tensorflow"
    builder: builders.Builder | None = None  # a custom space's, with its code


@dataclass(frozen=True)
class WorkerSlot:
    """One worker's place in an invocation: the parent run it logs under (in its
    experiment), and its share of the trials (0: until the study has n_trials)."""

    experiment_id: str
    parent_run_id: str
    index: int = 0
    quota: int = 0
