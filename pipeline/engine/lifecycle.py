"""The life of an invocation's runs and trials, owned here. A search or reproduce opens its
parent run as an `Invocation` and closes it whatever happens: at its end, on an error, on a
signal, or for a lost worker. What an invocation leaves open when its processes are gone
(its own, as it closes, or a dead one's, found by the next invocation) is closed by one
path, `abandon`: RUNNING trials FAIL and are queued again with the same params, their
runs KILLED, without waiting for any heartbeat's grace period."""

from __future__ import annotations

import logging

import optuna
from optuna.trial import TrialState

from pipeline import stopping, tracking
from pipeline.engine import liveness, studies

log = logging.getLogger("pipeline")
LOST = "its invocation was killed or lost"


class Invocation:
    """One command's parent run: tagged with where it runs, beating while it lives, and its
    CPU, memory and GPU watched, until `close`."""

    def __init__(
        self,
        tracker: tracking.Tracker,
        study: optuna.Study,
        *,
        experiment_id: str,
        experiment: str,
        name: str,
        tags: dict,
    ) -> None:
        self.tracker, self.study = tracker, study
        self.experiment, self.experiment_id = experiment, experiment_id
        tags = tags | liveness.identity()
        self.parent_id = tracker.start_run(experiment_id, name, tags=tags)
        self.heartbeat = liveness.Heartbeat(tracker, self.parent_id)
        self.monitor = tracker.watch_system(self.parent_id)  # CPU, memory, GPU
        self.closed = False

    def close(self, status: str, storage_lost: bool = False) -> None:
        """End the parent run with `status` once this invocation's processes are gone:
        what they left RUNNING is abandoned first (unless the Optuna storage is lost:
        then the next invocation does it). A second signal cannot break this off, and a
        store that fails here is a warning: the error that brought us here matters more."""
        if self.closed:
            return
        self.closed = True
        with stopping.shielded():
            self.heartbeat.stop()
            if self.monitor is not None:
                self.monitor.finish()
            try:
                if not storage_lost:
                    studies.fail_stale_trials(self.study)  # other invocations' dead workers
                    abandon(self.study, self.tracker, self.experiment, {self.parent_id})
            except Exception as error:
                log.warning("what this search left open is closed by the next one: %s", error)
            finally:
                try:
                    self.tracker.end_run(self.parent_id, status)
                except Exception as error:
                    log.warning(
                        "parent run %s is closed by the next search: %s", self.parent_id, error
                    )


def sweep_dead(tracker: tracking.Tracker, experiment: str, study: optuna.Study) -> int:
    """Close what dead invocations of `study` left RUNNING (SIGKILL, a lost machine), which
    MLflow and Optuna would otherwise keep RUNNING forever. Returns how many."""
    running = tracker.parent_runs(experiment, study.study_name, running=True)
    dead = {r["run_id"] for r in running if liveness.is_dead(r["tags"])}
    abandon(study, tracker, experiment, dead)
    for run_id in dead:
        tracker.fail(run_id, LOST, tracking.KILLED)
    return len(dead)


def abandon(
    study: optuna.Study, tracker: tracking.Tracker, experiment: str, gone: set[str]
) -> None:
    """The trials and trial runs left RUNNING by invocations `gone` (parent run ids), whose
    processes no longer run: a RUNNING trial FAILs and is queued again with its params, its
    run KILLED. When no other invocation of the study is alive, every RUNNING trial is such
    a trial, with or without a run (killed before it had one, say)."""
    lost = studies.RetryStale(tracker.uri)
    trials = study.get_trials(deepcopy=False)
    for run in tracker.trial_runs(experiment, study.study_name, running=True):
        if run["tags"].get(tracking.PARENT_RUN_ID) not in gone:
            continue
        number = int(run["tags"][tracking.TRIAL_NUMBER])
        if trials[number].state == TrialState.RUNNING:
            _fail_and_retry(study, number, lost)
        else:
            tracker.fail(run["run_id"], LOST, tracking.KILLED)
    if _alive_elsewhere(study, tracker, experiment, gone):
        return
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        _fail_and_retry(study, trial.number, lost)


def _fail_and_retry(study: optuna.Study, number: int, lost: studies.RetryStale) -> None:
    """FAIL, queued again with the same params, its run KILLED (as a stale heartbeat)."""
    try:
        study.tell(number, state=TrialState.FAIL)
    except (ValueError, RuntimeError):  # it finished meanwhile: nothing to abandon
        return
    lost(study, study.get_trials(deepcopy=False)[number])


def _alive_elsewhere(study, tracker, experiment: str, gone: set[str]) -> bool:
    parents = tracker.parent_runs(experiment, study.study_name, running=True)
    return any(r["run_id"] not in gone and not liveness.is_dead(r["tags"]) for r in parents)
