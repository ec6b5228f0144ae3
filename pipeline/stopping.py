"""SIGINT (Ctrl-C), SIGTERM and SIGHUP (a closed terminal or ssh session), handled alike
from a command's first line.

- The first signal is a request. Raising KeyboardInterrupt straight from a signal handler
  can land inside a finalizer (TensorFlow has many), where Python prints it and drops it;
  the handler sets a flag instead. Training checks it after every batch (its trial ends,
  its run KILLED), the study before every trial, the runner between its steps; the
  invocation then closes as it would at its end (the best model so far published) and
  says how to resume.
- A second signal raises KeyboardInterrupt at once and marks the stop as hurried: what is
  still open is closed KILLED without waiting for workers or heartbeats. Later signals
  are ignored while that happens (a few seconds).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_requested = threading.Event()
_state = {"count": 0, "first": 0, "second_stops_now": True, "shielded": 0}


def install(second_stops_now: bool = True) -> None:
    """Route SIGINT, SIGTERM and SIGHUP to `request` (main thread only). Workers pass
    False: Ctrl-C reaches them and their parent, which then sends SIGTERM too."""
    reset()
    _state["second_stops_now"] = second_stops_now
    for signum in SIGNALS:
        signal.signal(signum, request)


def interrupt_on_signals() -> None:
    """Until a command installs its handling: SIGTERM and SIGHUP raise KeyboardInterrupt
    as Ctrl-C does, so a command that has written nothing yet stops in one line."""
    for signum in SIGNALS:
        signal.signal(signum, _interrupt)


def default_signals() -> None:
    """Python's own handling back: Ctrl-C a KeyboardInterrupt, SIGTERM and SIGHUP the end
    of the process (a server such as `pipeline dashboard` stops on them)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def _interrupt(signum: int, frame=None) -> None:
    _state["first"] = _state["first"] or signum
    raise KeyboardInterrupt


def reset() -> None:
    _requested.clear()
    _state.update(count=0, first=0)


def request(signum: int = signal.SIGINT, frame=None) -> None:
    _state["count"] += 1
    _state["first"] = _state["first"] or signum
    _requested.set()
    if _state["count"] == 2 and _state["second_stops_now"] and not _state["shielded"]:
        raise KeyboardInterrupt


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Closing what is open (a few writes) is not broken off by a second signal; it is
    hurried (`hurried()`) instead."""
    _state["shielded"] += 1
    try:
        yield
    finally:
        _state["shielded"] -= 1


def note_interrupt() -> None:
    """A KeyboardInterrupt that no handler of ours saw (Python's own, in a notebook that
    calls `pipeline.search`): taken as a first request."""
    _state["count"] = max(_state["count"], 1)
    _state["first"] = _state["first"] or signal.SIGINT
    _requested.set()


def check() -> None:
    """Raise KeyboardInterrupt if a stop was requested."""
    if _requested.is_set():
        raise KeyboardInterrupt


def requested() -> bool:
    return _requested.is_set()


def hurried() -> bool:
    """A second signal came: close what is open at once, wait for nothing."""
    return _state["count"] >= 2


def exit_code() -> int:
    """128 + the first signal's number, as a shell reports a command a signal ended
    (130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP)."""
    return 128 + int(_state["first"] or signal.SIGINT)
