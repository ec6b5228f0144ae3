"""A store that goes away for a while (a database restarting or failing over, a tracking
server restarting) is waited for, with backoff, for a bounded time; only after that is it
lost. A store never reached is not waited for: a wrong URL is one line at once.

Neither SQLAlchemy (which Optuna's RDB storage uses) nor MLflow's client retries a call
that fails mid-way: SQLAlchemy's `pool_pre_ping` replaces a dead pooled connection before
a call, not during one, and MLflow's HTTP retries last seconds. So the waiting is here,
in one place, for both stores.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from pipeline import stopping

log = logging.getLogger("pipeline")
T = TypeVar("T")
_clock = {"outage_began": 0.0, "outage_ended": 0.0}  # this process's latest outage

# words of the errors that a restarting server gives, whatever the layer that raises them
TRANSIENT_WORDS = (
    "connection refused",
    "could not connect",
    "connection reset",
    "server closed the connection",
    "terminating connection",
    "connection to server",
    "the database system is starting up",
    "the database system is shutting down",
    "max retries exceeded",
    "remote end closed connection",
    "bad gateway",
    "service unavailable",
    "temporarily unavailable",
    "connection aborted",
    "broken pipe",
    "ssl syscall error",
    "database is locked",
)


def is_transient(error: BaseException) -> bool:
    """Does `error`, or an error behind it, say that the server went away for a while?"""
    seen = 0
    while error is not None and seen < 10:
        if any(word in str(error).lower() for word in TRANSIENT_WORDS):
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False


def patiently(call: Callable[[], T], *, wait: float, what: str) -> T:
    """`call()`, called again with backoff while it fails as a restarting store does, for
    at most `wait` seconds; then its error. A second Ctrl-C stops the waiting."""
    deadline, delay, told = None, 0.5, False
    while True:
        try:
            result = call()
        except Exception as error:
            if not is_transient(error) or stopping.hurried():
                raise
            now = time.monotonic()
            if deadline is None:
                deadline = now + wait
                _clock["outage_began"] = time.time()
            if now >= deadline:
                raise
            if not told:
                first = str(error).strip().splitlines()[0][:160] if str(error).strip() else ""
                log.warning(
                    "%s is unreachable (%s); waiting up to %.0f s for it", what, first, wait
                )
                told = True
            time.sleep(min(delay, max(0.0, deadline - now)))
            delay = min(delay * 2, 5.0)
            continue
        if deadline is not None:
            _clock["outage_ended"] = time.time()
            if told:
                log.warning("%s is back", what)
        return result


def recent_outage(within: float) -> bool:
    """Did a store of this process fail in the last `within` seconds (or is it failing)?
    Heartbeats missed then are the store's fault, not a sign that a worker died."""
    began, ended = _clock["outage_began"], _clock["outage_ended"]
    if began == 0.0:
        return False
    return ended < began or time.time() - ended < within
