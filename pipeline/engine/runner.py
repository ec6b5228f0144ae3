"""Run a plan: open its study and one MLflow parent run, run the missing trials here or in
worker processes, sweep what dead workers left behind, then record the summary."""

from __future__ import annotations

import gc
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from pipeline import backends, datasets, metrics, report, stopping, tracking
from pipeline.engine import liveness, studies, workers
from pipeline.engine.objective import DataCache, Objective
from pipeline.engine.plan import Plan, Slot
from pipeline.engine.publish import publish_best
from pipeline.engine.records import BestModel, dataset_inputs, record_parent
from pipeline.errors import UserError

log = logging.getLogger("pipeline")


class Interrupted(Exception):
    """Ctrl-C or SIGTERM stopped the study; the message says how to resume."""


@dataclass
class Outcome:
    study: optuna.Study
    parent_run_id: str | None
    ran: int  # trials this invocation started
    table: pd.DataFrame = field(default_factory=pd.DataFrame)  # the top trials
    data: datasets.Dataset | None = None  # as loaded for the trials (seeds' representation)
    model_uri: str | None = None  # the registered best model (models:/NAME/VERSION)
    experiment_id: str | None = None


def run(plan: Plan) -> Outcome:
    """Bring the plan's study to `n_trials` finished trials, logged under one parent run."""
    studies.quiet_optuna(plan.verbose)
    data, tracker = preflight(plan)
    study = studies.open_study(plan)
    liveness.sweep_parents(tracker, plan.dataset.name, study)  # of killed invocations
    if studies.finished(study) >= plan.n_trials:
        log.info("study %r already has %d finished trials", plan.study, studies.finished(study))
        return Outcome(study, None, 0, report.trials_frame(study, top=10), data)
    before = len(study.trials)
    queued = studies.enqueue(study, plan.trials.known)
    experiment_id = tracker.experiment(plan.dataset.name)
    tags = plan.tags | {tracking.KIND: plan.kind, tracking.WORKERS: plan.workers}
    tags |= liveness.identity()
    if queued:  # which trials were enqueued, and from where
        tags[tracking.ENQUEUED] = "; ".join(queued)
    parent_id = tracker.start_run(experiment_id, f"{plan.study}-{plan.kind}", tags=tags)
    tracker.log_params(parent_id, plan.parent_params)
    monitor = tracker.watch_system(parent_id)  # CPU, memory, GPU while the trials run
    heartbeat = liveness.Heartbeat(tracker, parent_id)
    defaults = datasets.DataOptions()  # the parent's datasets: the seeds' representation
    tracker.log_datasets(parent_id, dataset_inputs(plan.dataset, defaults, data))
    with tempfile.TemporaryDirectory() as folder:
        slot = Slot(experiment_id, parent_id, folder, quota=plan.n_trials - studies.finished(study))
        if plan.workers > 1 and plan.ray is None:  # each worker loads its own; the parent's
            data = None  # copy would wait, unused while they train (IMDB: about 50 MB)
        try:
            _run_trials(study, plan, slot, data, tracker)
        finally:
            heartbeat.stop()
            if monitor is not None:
                monitor.finish()
        if data is None:  # read again for the report and the model (IMDB: 0.2 s)
            data = datasets.load_dataset(plan.dataset)
        sweep(study, tracker, plan)
        table = report.trials_frame(study, top=10)
        best = BestModel.pick(Path(folder), minimizes(plan))  # of every worker's best
        importances = plan.trials.importances
        record_parent(
            tracker, parent_id, study, table, Path(folder), minimizes(plan), best, importances
        )
        classes = data.class_names
        model_uri = publish_best(plan, study, best, Path(folder), classes, tracker, parent_id)
    tracker.end_run(parent_id, tracking.FINISHED)
    ran = len(study.trials) - before
    return Outcome(study, parent_id, ran, table, data, model_uri, experiment_id)


def preflight(plan: Plan) -> tuple[datasets.Dataset, tracking.Tracker]:
    """Read the data and reach the tracking store before any study or run exists, so a bad
    archive or an unreachable server leaves nothing half-written."""
    data = datasets.load_dataset(plan.dataset)
    if plan.ray is not None:  # the cluster reached, and fit for the stores, before a study
        from pipeline import cluster

        try:
            cluster.connect(plan.ray, plan.workers)
            cluster.check_stores(plan.stores.storage, plan.stores.tracking)
        except BaseException:
            cluster.shutdown()
            raise
    tracker = tracking.Tracker(plan.stores.tracking)
    tracker.experiment(plan.dataset.name)
    return data, tracker


def _run_trials(study, plan: Plan, slot: Slot, data, tracker: tracking.Tracker) -> None:
    """The trials, here or in `plan.workers` processes; the parent run ends KILLED on
    Ctrl-C, FAILED on an error (a lost storage becomes one line saying how to resume)."""
    progress = Progress(study, plan.n_trials)
    try:
        if plan.ray is None and plan.workers == 1:
            work(study, plan, slot, progress, data, tracker)
            return
        shares = workers.quotas(slot.quota, plan.workers)
        slots = [replace(slot, index=i, quota=quota) for i, quota in enumerate(shares)]
        if plan.ray is not None:
            from pipeline import cluster

            folder = Path(slot.folder)
            codes = cluster.run(plan, slots, data, progress, _finished_by(study), folder)
        else:
            arguments = [(plan, s) for s in slots]
            codes = workers.run(work_in_process, arguments, progress, backend=plan.backend)
        _run_leftovers(study, plan, slot, codes, progress, data, tracker)
    except KeyboardInterrupt:
        if plan.ray is not None:  # its workers interrupted: their runs KILLED, trials FAIL
            sweep(study, tracker, plan)
        tracker.end_run(slot.parent_run_id, tracking.KILLED)
        raise Interrupted(
            f"interrupted; run the same command again to resume study {plan.study!r} "
            f"({studies.finished(study)}/{plan.n_trials} trials done)"
        ) from None
    except BaseException as error:
        tracker.end_run(slot.parent_run_id, tracking.FAILED)
        lost = studies.storage_error(error)
        if lost is None:
            raise
        raise UserError(
            f"lost the Optuna storage ({str(lost).strip().splitlines()[0][:200]}); finished "
            "trials are saved: run the same command again once it is back"
        ) from None
    finally:
        progress.close()
        if plan.ray is not None:  # a local Ray stops with its command; a cluster stays
            from pipeline import cluster

            cluster.shutdown()


def _run_leftovers(study, plan: Plan, slot: Slot, codes: list[int], progress, data, tracker):
    """A worker died or gave up (its quota unmet): run the missing trials here, before the
    same deadline, so the study ends with exactly `n_trials` finished ones."""
    missing = plan.n_trials - studies.finished(study)
    if missing <= 0 or plan.seconds_left() == 0:  # done, or the deadline stopped them all
        return
    died = [f"{i} (exit code {code})" for i, code in enumerate(codes) if code != 0]
    why = f"worker {', '.join(died)} died" if died else "the workers stopped early"
    log.warning("%s with %d trials unfinished; running them here", why, missing)
    leftover = replace(slot, index=plan.workers, quota=missing)
    work(study, plan, leftover, progress, data, tracker)


def work_in_process(plan: Plan, slot: Slot) -> None:
    """A worker process: its own connection to the study, then its share of the trials."""
    studies.quiet_optuna(plan.verbose)
    work(studies.open_study(plan, worker=slot.index), plan, slot)


def work(
    study: optuna.Study,
    plan: Plan,
    slot: Slot,
    progress: Progress | None = None,
    data: datasets.Dataset | None = None,
    tracker: tracking.Tracker | None = None,
    loader: Callable | None = None,
    tags: dict[str, str] | None = None,
) -> None:
    """Run trials until this slot's quota or the study's `n_trials` is reached (`data`,
    `tracker`: the invocation's own, in its process; a worker process makes its own).
    `loader`: where a representation comes from (a Ray worker's: the object store);
    `tags`: what its trial runs add (a Ray worker's node and host)."""
    # a parent that handed trials to workers has not started its backend yet
    backends.start(plan.backend, quiet=not plan.verbose)

    cache = DataCache(plan.dataset, data, loader)
    best = BestModel(Path(slot.folder), slot.index, minimizes(plan))
    tracker = tracker or tracking.Tracker(plan.stores.tracking)
    objective = Objective(plan, cache, tracker, slot, best, backends.devices(), tags)
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


def _finished_by(study: optuna.Study) -> Callable[[int], int]:
    """How many trials the worker of each slot index finished (a lost Ray worker's
    replacement owes the rest of its share)."""

    def finished(index: int) -> int:
        done = study.get_trials(deepcopy=False, states=studies.DONE)
        return sum(1 for t in done if t.user_attrs.get("worker") == index)

    return finished


def minimizes(plan: Plan) -> bool:
    """Is the plan's (first) objective minimized?"""
    return metrics.lower_is_better(metrics.val_metric(plan.dataset.task))


def sweep(study: optuna.Study, tracker: tracking.Tracker, plan: Plan) -> None:
    """Trials of dead workers become FAIL (and are retried); MLflow runs left RUNNING by a
    trial that Optuna no longer runs are set KILLED."""
    running = studies.fail_stale_trials(study)
    for run in tracker.trial_runs(plan.dataset.name, plan.study, running=True):
        if int(run["tags"][tracking.TRIAL_NUMBER]) not in running:
            tracker.fail(run["run_id"], "worker lost", tracking.KILLED)


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
    return f"best {study.user_attrs.get('val_metric')}={best.value:.4f} (trial {best.number})"


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
            log.warning("trial %d failed: %s", trial.number, trial.user_attrs.get("error", "?"))
        if (self.quota and self.done >= self.quota) or studies.finished(study) >= self.n_trials:
            study.stop()
        elif self.failures >= self.max_failures:
            log.warning("stopping after %d failed trials in a row", self.failures)
            study.stop()
