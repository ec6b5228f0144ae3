"""What one invocation runs, as plain picklable values: the CLI builds a plan once; the
runner, and every worker process it starts, execute that plan."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from pipeline import params, spaces, tables
from pipeline.datasets import Spec


@dataclass(frozen=True)
class Stores:
    storage: str  # the Optuna storage URL
    tracking: str  # the MLflow tracking URI


@dataclass(frozen=True)
class SpaceTrials:
    """Trials sampled from a search space by an Optuna sampler, stopped early by a pruner."""

    kind: ClassVar[str] = "search"
    space: spaces.Space
    sampler: str = "tpe"
    pruner: str = "median"
    seed: int = 0  # of the sampler; trial n trains with seed + n

    def params_of(self, trial) -> dict[str, Any]:
        return params.suggest(trial, self.space)

    def seed_of(self, trial) -> int:
        return self.seed + trial.number


@dataclass(frozen=True)
class TableTrials:
    """Every row of a seed table, `replicates` times: a grid over row x replicate."""

    kind: ClassVar[str] = "reproduce"
    table: tables.SeedTable
    replicates: int

    def grid(self) -> dict[str, list[int]]:
        rows = [r.index for r in self.table.rows]
        return {"row": rows, "replicate": list(range(self.replicates))}

    def params_of(self, trial) -> dict[str, Any]:
        index = trial.suggest_categorical("row", self.grid()["row"])
        return self.table.rows[index - 1].params

    def seed_of(self, trial) -> int:
        return trial.suggest_categorical("replicate", self.grid()["replicate"])


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
    workers: int = 1
    heartbeat: int = 10  # seconds; a trial silent for 3 beats is failed and retried
    verbose: bool = False
    tags: dict[str, Any] = field(default_factory=dict)  # on the parent and every trial run
    parent_params: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.trials.kind

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


@dataclass(frozen=True)
class Slot:
    """One worker's place in an invocation: the parent run it logs under, its share of the
    trials (0: until the study has n_trials), and the folder where it leaves its best model."""

    experiment_id: str
    parent_run_id: str
    folder: str
    index: int = 0
    quota: int = 0
