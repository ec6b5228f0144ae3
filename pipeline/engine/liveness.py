"""An invocation's parent run says where it runs and beats while it lives, so a later
command can tell a live invocation from a dead one (SIGKILL, a lost machine): `lifecycle`
closes what a dead one left open, `delete-study` refuses a live one."""

from __future__ import annotations

import os
import socket
import threading
import time

from pipeline import tracking

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


def running_runs(tracker: tracking.Tracker, study: str) -> tuple[list[dict], list[dict]]:
    """`study`'s RUNNING parent runs and RUNNING trial runs (as `Tracker.runs` gives them),
    in every experiment of the store: `pipeline delete-study` knows the study's name, not
    its dataset. Reads only."""
    names = tracker.experiment_names()
    parents = [r for name in names for r in tracker.parent_runs(name, study, running=True)]
    trials = [r for name in names for r in tracker.trial_runs(name, study, running=True)]
    return parents, trials


def is_live(tags: dict[str, str]) -> bool:
    """A RUNNING parent run's invocation is alive: it says where it runs (every invocation
    tags its parent run with `identity()` as it creates it, so one without `alive_at` was
    left by a version that did not) and is not dead."""
    return tracking.ALIVE_AT in tags and not is_dead(tags)


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
