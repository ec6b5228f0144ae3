"""An invocation's parent run says where it runs and beats while it lives; a later
invocation of the same study sweeps the parent runs of dead ones (SIGKILL, a lost machine),
which MLflow would otherwise leave RUNNING forever."""

from __future__ import annotations

import os
import socket
import threading
import time

from optuna.trial import TrialState

from pipeline import tracking
from pipeline.engine import studies

BEAT_EVERY = 30  # seconds between two beats of a live invocation
STALE_AFTER = 300  # a parent run of another machine silent this long is dead


def identity() -> dict[str, str | int]:
    """The tags that let a later invocation tell whether this one is alive."""
    host, pid, now = socket.gethostname(), os.getpid(), int(time.time())
    return {tracking.HOST: host, tracking.PID: pid, tracking.ALIVE_AT: now}


class Heartbeat:
    """Refreshes the parent run's `alive_at` tag every BEAT_EVERY seconds until stopped."""

    def __init__(self, tracker: tracking.Tracker, run_id: str) -> None:
        self.tracker, self.run_id = tracker, run_id
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, name="parent-heartbeat", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)

    def _beat(self) -> None:
        while not self.stopped.wait(BEAT_EVERY):
            try:
                self.tracker.set_tags(self.run_id, {tracking.ALIVE_AT: int(time.time())})
            except Exception:  # a store restarting: the next beat tries again
                continue


def sweep_parents(tracker: tracking.Tracker, experiment: str, study) -> int:
    """Set KILLED the RUNNING parent runs of `study` (an Optuna study) whose invocation is
    gone. The trials it left running are handled as trials whose worker stopped beating
    (`studies.RetryStale`): FAIL, queued again with the same params, their runs KILLED,
    without waiting for the heartbeat's grace period. When no invocation of the study is
    left alive, every RUNNING trial is such a trial, with or without an MLflow run (killed
    before its first heartbeat, say). Returns how many invocations."""
    running = tracker.parent_runs(experiment, study.study_name, running=True)
    dead = {r["run_id"] for r in running if is_dead(r["tags"])}
    nobody_else = len(dead) == len(running)  # no other invocation of the study is alive
    for run_id in dead:
        tracker.fail(run_id, "its invocation was killed or lost", tracking.KILLED)
    lost = studies.RetryStale(tracker.uri)
    for run in tracker.trial_runs(experiment, study.study_name, running=True):
        if run["tags"].get(tracking.PARENT_RUN_ID) in dead:
            number = int(run["tags"][tracking.TRIAL_NUMBER])
            if study.get_trials(deepcopy=False)[number].state == TrialState.RUNNING:
                study.tell(number, state=TrialState.FAIL)
                lost(study, study.get_trials(deepcopy=False)[number])
            else:
                tracker.fail(run["run_id"], "its invocation was killed or lost", tracking.KILLED)
    if nobody_else:  # then no trial runs: one still RUNNING was killed before it had a run
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            study.tell(trial.number, state=TrialState.FAIL)
            lost(study, study.get_trials(deepcopy=False)[trial.number])
    return len(dead)


def is_dead(tags: dict[str, str]) -> bool:
    """Its process is gone (same machine), or it has not beaten for STALE_AFTER seconds."""
    here = tags.get(tracking.HOST) == socket.gethostname() and tags.get(tracking.PID)
    if here and not _alive(int(tags[tracking.PID])):
        return True
    alive_at = tags.get(tracking.ALIVE_AT)
    return alive_at is not None and time.time() - float(alive_at) > STALE_AFTER


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
