"""Run a plan: open its study and one MLflow parent run (`lifecycle`), run the missing
trials here, in worker processes or on Ray, then record the summary and publish the best
kept model."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import replace
from pathlib import Path

from pipeline import datasets, metrics, report, stopping, tracking, trial_record
from pipeline.engine import ensembling, executors, lifecycle, studies, trials, workers
from pipeline.engine.outcome import Outcome
from pipeline.engine.plan import Plan, WorkerSlot
from pipeline.engine.publish import best_kept, publish_best
from pipeline.engine.records import dataset_inputs, record_parent
from pipeline.errors import Interrupted, UserError

log = logging.getLogger("pipeline")


def run(plan: Plan) -> Outcome:
    """Bring the plan's study to `n_trials` finished trials, logged under one parent run.
    A signal stops new trials, closes what is open and publishes the best model so far,
    then raises `Interrupted`; a lost storage, waited for in vain, is one `UserError`."""
    studies.quiet_optuna(plan.verbose)
    executor = executors.choose(plan)
    try:
        outcome = _run(plan, executor)
    finally:
        executor.close()
    outcome.plan = plan
    return outcome


def _run(plan: Plan, executor) -> Outcome:
    stopping.check()  # a signal while the command started: nothing written yet
    tracking.bound_http(plan.stores.tracking)  # a server not there: one line, nothing read
    done = studies.finished_study(plan)
    if done is not None:  # nothing to run: no data read, no worker started
        return _already_finished(plan, done)
    data, tracker = preflight(plan, executor)
    stopping.check()
    study = studies.open_study(plan)
    lifecycle.sweep_dead(tracker, plan.dataset.name, study)  # of killed invocations
    experiment_id = _experiment(plan, tracker)
    _stop_if_asked(plan, study)
    before = len(study.trials)
    queued = studies.enqueue(study, plan.trials.known)
    tags = plan.tags | {tracking.KIND: plan.kind, tracking.WORKERS: plan.workers}
    if queued:  # which trials were enqueued, and from where
        tags[tracking.ENQUEUED] = "; ".join(queued)
    invocation = lifecycle.Invocation(
        tracker,
        study,
        experiment_id=experiment_id,
        experiment=plan.dataset.name,
        name=f"{plan.study}-{plan.kind}",
        tags=tags,
    )
    try:
        outcome = _run_and_record(plan, study, tracker, invocation, executor, data=data)
        outcome.experiment_id = experiment_id
    except BaseException as error:
        status = tracking.FAILED if isinstance(error, Exception) else tracking.KILLED
        invocation.close(status, storage_lost=studies.storage_error(error) is not None)
        raise _explained(error, plan, study) from None
    interrupted = stopping.requested()
    invocation.close(tracking.KILLED if interrupted else tracking.FINISHED)
    if interrupted:
        raise Interrupted(_resume_line(plan, study, outcome.model_uri))
    outcome.ran = len(study.trials) - before
    return outcome


def _already_finished(plan: Plan, study) -> Outcome:
    """A study with its trials finished: what a killed invocation left undone (publishing
    the best model, choosing the ensemble), then the same outcome as the search's."""
    tracker = tracking.Tracker(plan.stores.tracking, wait=plan.stores.wait)
    log.info("study %r already has %d finished trials", plan.study, studies.finished(study))
    lifecycle.sweep_dead(tracker, plan.dataset.name, study)  # of killed invocations
    experiment_id = _experiment(plan, tracker)
    outcome = Outcome(study=study, parent_run_id=None, ran=0, plan=plan)
    with tempfile.TemporaryDirectory() as folder:
        uri = _publish(plan, study, tracker, lambda: outcome.data, Path(folder), parent_id=None)
    outcome.ensemble = _ensemble(plan, study, tracker, parent_id=None, again=False)
    outcome.table = report.trials_frame(study, top=10)
    outcome.model_uri, outcome.experiment_id = uri, experiment_id
    return outcome


def _experiment(plan: Plan, tracker) -> str:
    """The dataset's experiment, its runs table opened on the trials, best first."""
    experiment_id = tracker.experiment(plan.dataset.name)
    tracker.show_trials(
        experiment_id,
        metric="final_" + metrics.val_metric(plan.dataset.task),
        test_metric=metrics.test_metric(metrics.val_metric(plan.dataset.task)),
        params=plan.trials.compared(),
    )
    return experiment_id


def _run_and_record(plan: Plan, study, tracker, invocation, executor, data) -> Outcome:
    """The trials, then the parent's record and the best model (after a first signal too:
    the best so far is published)."""
    parent_id = invocation.parent_id
    tracker.log_params(parent_id, plan.parent_params)
    defaults = datasets.DataOptions()  # the parent's datasets: the seeds' representation
    tracker.log_datasets(parent_id, dataset_inputs(plan.dataset, defaults, data))
    if not executor.keeps_data:  # each worker loads its own
        data = None
    remaining = plan.n_trials - studies.finished(study)
    slot = WorkerSlot(invocation.experiment_id, parent_id, quota=remaining)
    try:
        _run_trials(
            study=study, plan=plan, executor=executor, slot=slot, data=data, tracker=tracker
        )
    except KeyboardInterrupt:
        if stopping.hurried():  # a second signal: close at once, publish nothing
            raise
        stopping.note_interrupt()  # Ctrl-C where Python's own handler raised it
    if data is None:  # read again for the report and the model (IMDB: 0.2 s)
        data = datasets.load_dataset(plan.dataset)
    table = report.trials_frame(study, top=10)
    with tempfile.TemporaryDirectory() as folder:
        uri = _publish(
            plan, study, tracker, lambda: data, Path(folder), parent_id=parent_id, table=table
        )
    chosen = _ensemble(plan, study, tracker, parent_id=parent_id, again=True)
    return Outcome(
        study=study,
        parent_run_id=parent_id,
        ran=0,
        table=table,
        loaded=data,
        model_uri=uri,
        ensemble=chosen,
    )


def _ensemble(plan: Plan, study, tracker, parent_id, again: bool):
    """The ensemble of the study's kept trials, chosen after its trials: again after new
    trials (`again`), else only if none was chosen yet (a search killed before it). A
    seed table's rows, a stopped search and `--ensemble-size 0` choose none."""
    if plan.kind != "search" or plan.ensemble_size < 1 or stopping.requested():
        return None
    known = trial_record.ensemble_of(study)
    if known is not None and not again:
        return ensembling.from_record(known)
    return ensembling.build(
        study,
        tracker,
        experiment=plan.dataset.name,
        size=plan.ensemble_size,
        parent_id=parent_id,
    )


def _publish(plan: Plan, study, tracker, data, folder: Path, parent_id, table=None) -> str | None:
    """The parent's record (when there is a parent) and the best kept model, registered
    unless an earlier invocation did it (`data()`: the dataset, read only then)."""
    minimize = trials.minimizes(plan)  # the parent's record copies the best network
    best = best_kept(study, tracker, minimize, folder, download=parent_id is not None)
    if parent_id is not None:
        importances = plan.trials.importances
        record_parent(
            tracker=tracker,
            parent_id=parent_id,
            study=study,
            table=table,
            workdir=folder,
            minimize=minimize,
            best=best,
            importances=importances,
        )
    return publish_best(
        plan=plan,
        study=study,
        best=best,
        workdir=folder,
        classes=lambda: data().class_names,
        tracker=tracker,
        parent_id=parent_id,
    )


def _stop_if_asked(plan: Plan, study) -> None:
    """A signal came while the data loaded or the stores opened: nothing is open yet."""
    if stopping.requested():
        raise Interrupted(_resume_line(plan, study, None))


def _resume_line(plan: Plan, study, model_uri: str | None) -> str:
    done = f"{studies.finished(study)}/{plan.n_trials} trials done"
    model = f"; the best model so far is {model_uri}" if model_uri else ""
    return f"interrupted ({done}{model}); run the same command again to resume study {plan.study!r}"


def _explained(error: BaseException, plan: Plan, study) -> BaseException:
    """What the command says about an error that closed the invocation."""
    if isinstance(error, KeyboardInterrupt):
        return Interrupted(_resume_line(plan, study, None))
    lost = studies.storage_error(error)
    if lost is None or isinstance(error, UserError):
        return error
    return UserError(
        f"lost the Optuna storage ({str(lost).strip().splitlines()[0][:200]}); finished "
        "trials are saved: run the same command again once it is back"
    )


def preflight(plan: Plan, executor) -> tuple[datasets.Dataset, tracking.Tracker]:
    """Read the data, reach what runs the trials and the tracking store before any study
    or run exists, so a bad archive or an unreachable server leaves nothing half-written."""
    data = datasets.load_dataset(plan.dataset)
    executor.open()
    tracker = tracking.Tracker(plan.stores.tracking, wait=plan.stores.wait)
    tracker.experiment(plan.dataset.name)
    return data, tracker


def _run_trials(study, plan: Plan, executor, slot: WorkerSlot, data, tracker) -> None:
    """The missing trials, split over the plan's workers, with a progress bar; a signal
    stops them (KeyboardInterrupt), their trials FAIL and their runs end KILLED."""
    progress = trials.Progress(study, plan.n_trials)
    try:
        shares = workers.quotas(slot.quota, plan.workers)
        slots = [replace(slot, index=i, quota=quota) for i, quota in enumerate(shares)]
        codes = executor.run(study, slots, progress, data)
        if executor.elsewhere:  # a worker that died or gave up: its trials run here
            _run_leftovers(
                study=study,
                plan=plan,
                slot=slot,
                codes=codes,
                progress=progress,
                data=data,
                tracker=tracker,
            )
    finally:
        progress.close()


def _run_leftovers(study, plan: Plan, slot: WorkerSlot, codes: list[int], progress, data, tracker):
    """A worker died or gave up (its quota unmet): run the missing trials here, before the
    same deadline, so the study ends with exactly `n_trials` finished ones."""
    missing = plan.n_trials - studies.finished(study)
    if missing <= 0 or plan.seconds_left() == 0:  # done, or the deadline stopped them all
        return
    died = [f"{i} (exit code {code})" for i, code in enumerate(codes) if code != 0]
    why = f"worker {', '.join(died)} died" if died else "the workers stopped early"
    log.warning("%s with %d trials unfinished; running them here", why, missing)
    # the workers are gone: what they left RUNNING is tried again now, not after a grace
    lifecycle.abandon(study, tracker, plan.dataset.name, {slot.parent_run_id})
    leftover = replace(slot, index=plan.workers, quota=missing)
    trials.work(
        study=study, plan=plan, slot=leftover, progress=progress, data=data, tracker=tracker
    )
