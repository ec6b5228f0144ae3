"""One process at a time creates or migrates a local SQLite store: MLflow's alembic
migration and Optuna's table creation both fail when two processes race on a new file."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from pipeline.settings import sqlite_path


@contextlib.contextmanager
def store_lock(url: str) -> Iterator[None]:
    """Hold an exclusive lock beside a `sqlite:///` store (a no-op for other URLs, whose
    servers create and migrate their schema themselves)."""
    database = sqlite_path(url)
    if database is None:
        yield
        return
    database.parent.mkdir(parents=True, exist_ok=True)
    lock = Path(f"{database}.lock")
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
        yield
