"""The trial loop a worker runs, wherever it runs (this process, a worker process, a Ray
worker): Optuna's `optimize` over the plan's objective until the worker's share of the
trials or the study's `n_trials` is reached; and the progress bar the invocation shows."""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from typing import Any

import optuna

from pipeline import backends, datasets, metrics, stopping, tracking, trial_record
from pipeline.engine import studies
from pipeline.engine.kept import KeptModels
from pipeline.engine.objective import DataCache, Objective
from pipeline.engine.plan import Plan, WorkerSlot

log = logging.getLogger("pipeline")


def work_in_process(plan: Plan, slot: WorkerSlot) -> None:
    """A worker process: its own connection to the study, then its share of the trials."""
    studies.quiet_optuna(plan.verbose)
    work(studies.open_study(plan, worker=slot.index), plan, slot)


def work(
    study: optuna.Study,
    plan: Plan,
    slot: WorkerSlot,
    progress: Progress | None = None,
    data: datasets.Dataset | None = None,
    tracker: tracking.Tracker | None = None,
    loader: Callable | None = None,
    fitter: Callable | None = None,
    tags: dict[str, str] | None = None,
) -> None:
    """Run trials until this slot's quota or the study's `n_trials` is reached (`data`,
    `tracker`: the invocation's own, in its process; a worker process makes its own).
    `loader`: where a representation comes from (a Ray worker's: the object store), and
    `fitter` what its features were fitted with (a Ray worker's: the driver's node);
    `tags`: what its trial runs add (a Ray worker's node and host)."""
    # a parent that handed trials to workers has not started its backend yet
    backends.start(plan.backend, quiet=not plan.verbose)

    cache = DataCache(plan.dataset, data, loader, fitter)
    tracker = tracker or tracking.Tracker(plan.stores.tracking, wait=plan.stores.wait)
    keeper = KeptModels(
        tracker, plan.dataset.name, minimizes(plan), keep=plan.keep, task=plan.dataset.task
    )
    objective = Objective(plan, cache, tracker, slot, keeper, device=backends.devices(), where=tags)
    rules = StopRules(plan.n_trials, slot.quota)
    callbacks: list[Any] = [rules] if progress is None else [rules, lambda *_: progress()]
    # What lives now (TensorFlow, MLflow, the data) lives to the end: leave it out of the
    # cyclic garbage collector's passes. Each trial ends with a full collection (Keras'
    # clear_session, then Optuna's gc_after_trial) that otherwise walks ~500,000 objects:
    # 0.23 s each, about 1 s of a 3.5 s IMDB trial (2-core CPU, before freezing). Unfrozen
    # at the end, so a caller that runs several searches in one process frees them.
    gc.collect()
    gc.freeze()
    try:
        study.optimize(
            objective,
            timeout=plan.seconds_left(),
            catch=(Exception,),
            callbacks=callbacks,
            gc_after_trial=True,
        )
    finally:
        gc.unfreeze()
        objective.close()


def finished_by(study: optuna.Study) -> Callable[[int], int]:
    """How many trials the worker of each slot index finished (a lost Ray worker's
    replacement owes the rest of its share)."""

    def finished(index: int) -> int:
        done = study.get_trials(deepcopy=False, states=studies.DONE)
        return sum(1 for t in done if trial_record.read(t).worker == index)

    return finished


def minimizes(plan: Plan) -> bool:
    """Is the plan's (first) objective minimized?"""
    return metrics.lower_is_better(metrics.val_metric(plan.dataset.task))


class Progress:
    """A bar of the study's finished trials (every worker's), with the best value so far."""

    def __init__(self, study: optuna.Study, n_trials: int) -> None:
        from tqdm.auto import tqdm

        self.study = study
        self.bar = tqdm(
            total=n_trials,
            initial=studies.finished(study),
            unit="trial",
            desc=f"study {study.study_name}",
            dynamic_ncols=True,
        )

    def __call__(self) -> None:
        self.bar.n = studies.finished(self.study)
        self.bar.set_postfix_str(best_text(self.study), refresh=True)

    def close(self) -> None:
        self.bar.close()


def best_text(study: optuna.Study) -> str:
    """The best value so far, in a few words."""
    if studies.is_multi(study):
        return f"{len(study.best_trials)} trials on the Pareto front"
    best = studies.best_trial(study)
    if best is None:
        return "no completed trial yet"
    metric = trial_record.study_metric(study)
    return f"best {metric}={best.value:.4f} (trial {best.number})"


class StopRules:
    """Stop when this worker has finished its quota of trials, when the study has
    `n_trials` finished trials, or after `max_failures` failed trials in a row here."""

    def __init__(self, n_trials: int, quota: int, max_failures: int = 5) -> None:
        self.n_trials, self.quota, self.max_failures = n_trials, quota, max_failures
        self.done = self.failures = 0

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        stopping.check()  # Ctrl-C / SIGTERM between two trials: start no other
        failed = trial.state == optuna.trial.TrialState.FAIL
        self.failures = self.failures + 1 if failed else 0
        self.done += trial.state in studies.DONE
        if failed:
            error = trial_record.read(trial).error or "?"
            log.warning("trial %d failed: %s", trial.number, error)
        if (self.quota and self.done >= self.quota) or studies.finished(study) >= self.n_trials:
            study.stop()
        elif self.failures >= self.max_failures:
            log.warning("stopping after %d failed trials in a row", self.failures)
            study.stop()
