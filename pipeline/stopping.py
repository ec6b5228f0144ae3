"""Ctrl-C and SIGTERM as a request that training honours at its next batch.

Raising KeyboardInterrupt straight from a signal handler can land inside a finalizer
(TensorFlow has many), where Python prints it and drops it. The handler sets a flag
instead; training checks it after every batch, the study after every trial. A second
signal stops at once.
"""

from __future__ import annotations

import signal
import threading

_requested = threading.Event()
_second_stops_now = [True]


def request(signum=None, frame=None) -> None:
    if _requested.is_set() and _second_stops_now[0]:
        raise KeyboardInterrupt
    _requested.set()


def check() -> None:
    """Raise KeyboardInterrupt if a stop was requested."""
    if _requested.is_set():
        raise KeyboardInterrupt


def install(second_stops_now: bool = True) -> None:
    """Route SIGINT and SIGTERM to `request` (main thread only). Workers pass False: Ctrl-C
    reaches them and their parent, which then sends SIGTERM too."""
    _requested.clear()
    _second_stops_now[0] = second_stops_now
    signal.signal(signal.SIGINT, request)
    signal.signal(signal.SIGTERM, request)
