"""Where an invocation's trials run, chosen once from the plan: in this process
(`InProcess`), in worker processes on this machine (`Processes`), or as Ray tasks on a
cluster (`ray_workers.RayWorkers`, the only module that imports ray). The runner
calls the same three methods whichever it has; a fourth way to run trials is one more
class with them.

- `open()`: reach what runs the trials, before any study or run exists (a wrong address
  is one line and leaves nothing half-written);
- `run(study, slots, progress, data)`: each slot's trial loop (`trials.work`) to its end,
  calling `progress()` meanwhile; returns each slot's exit code (0: its share done). A
  signal stops them (KeyboardInterrupt): each ends its trial, and a second one at once;
- `close()`: let go of it (a private Ray stops; a cluster stays).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from pipeline.engine import trials, workers
from pipeline.engine.plan import Plan, WorkerSlot


class Executor(Protocol):
    keeps_data: bool  # the invocation's data is used here while the trials run
    elsewhere: bool  # trials run in other processes: what they leave undone, the runner runs

    def open(self) -> None: ...

    def run(
        self, study, slots: list[WorkerSlot], progress: Callable[[], None], data
    ) -> list[int]: ...

    def close(self) -> None: ...


def choose(plan: Plan) -> Executor:
    """The executor of `plan`: Ray's (with `--ray`), worker processes, or this process."""
    if plan.ray is not None:
        from pipeline.engine.executors.ray_workers import RayWorkers

        return RayWorkers(plan)
    if plan.workers > 1:
        return Processes(plan)
    return InProcess(plan)


class InProcess:
    """The one slot runs here, on the invocation's own data."""

    keeps_data, elsewhere = True, False

    def __init__(self, plan: Plan) -> None:
        self.plan = plan

    def open(self) -> None:
        pass

    def run(self, study, slots: list[WorkerSlot], progress: Callable[[], None], data) -> list[int]:
        for slot in slots:
            trials.work(study, self.plan, slot, progress, data)
        return [0] * len(slots)

    def close(self) -> None:
        pass


class Processes:
    """One spawned process per slot on this machine, each loading its own data (the
    invocation's copy would wait, unused, while they train: IMDB about 50 MB)."""

    keeps_data, elsewhere = False, True

    def __init__(self, plan: Plan) -> None:
        self.plan = plan

    def open(self) -> None:
        pass

    def run(self, study, slots: list[WorkerSlot], progress: Callable[[], None], data) -> list[int]:
        arguments = [(self.plan, slot) for slot in slots]
        return workers.run(
            trials.work_in_process,
            arguments,
            progress,
            backend=self.plan.backend,
            quiet=not self.plan.verbose,
        )

    def close(self) -> None:
        pass
