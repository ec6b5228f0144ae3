"""One process at a time creates or migrates a store: MLflow's alembic migration and
Optuna's table creation both fail when two processes race on a new SQLite file, and
PostgreSQL refuses all but one of several `CREATE TABLE`s of one table made at once
("duplicate key value violates unique constraint pg_type_typname_nsp_index"). And a
store file that cannot be created, read or written is one line naming it."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from pipeline.errors import UserError
from pipeline.settings import sqlite_path

# what opening the lock beside an existing store raises where the user may only read it
READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)


@contextlib.contextmanager
def store_lock(url: str) -> Iterator[None]:
    """Hold an exclusive lock beside a `sqlite:///` store, or PostgreSQL's advisory lock
    on a `postgresql://` database (a no-op for other URLs), and check that SQLite can read
    the file. An existing store whose folder is read-only is opened without the lock:
    reading must not need to write, and the lock only guards creating a new file."""
    if url.startswith("postgresql"):
        with _advisory_lock(url):
            yield
        return
    database = sqlite_path(url)
    if database is None:
        yield
        return
    try:
        database.parent.mkdir(parents=True, exist_ok=True)
        handle = open(f"{database}.lock", "a")  # noqa: SIM115  (closed by the `with`)
    except OSError as error:
        if not (database.is_file() and error.errno in READ_ONLY):
            raise UserError(unwritable(database, error)) from None
        handle = None
    with handle or contextlib.nullcontext():
        if handle is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
        check_database(database)
        yield


SCHEMA_LOCK = 0x7069_7065_6C69_6E65  # "pipeline": the advisory lock's key, one per database


@contextlib.contextmanager
def _advisory_lock(url: str) -> Iterator[None]:
    """PostgreSQL's session-level advisory lock, held on a connection of its own while the
    caller creates or migrates its tables; released when that connection closes."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(
                sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": SCHEMA_LOCK}
            )
            yield
    finally:
        engine.dispose()


def check_database(database: Path) -> None:
    """A store file SQLite cannot read is one line naming it and the remedy, before MLflow
    or Optuna meet it (as a traceback, or Optuna's vague "exception during the commit").
    Reads only the schema: damage deeper in is found by the query that meets it."""
    if not database.is_file():
        return
    try:
        with contextlib.closing(sqlite3.connect(_read_only(database), uri=True)) as db:
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as error:
        if not is_busy(error):  # busy or locked: the store's own opening waits for it
            raise UserError(damaged(database, error)) from None


def _read_only(database: Path) -> str:
    return database.resolve().as_uri() + "?mode=ro"


def damaged(database: Path, error: BaseException) -> str:
    """One line for a store file SQLite cannot read, with the remedy."""
    if "not a database" in str(error):
        return (
            f"{database} is not an SQLite database ({error}); check --tracking-uri and "
            "--storage (MLFLOW_TRACKING_URI, PIPELINE_STORAGE), or move the file away"
        )
    return (
        f"the store {database} is damaged ({error}); restore it from a backup, or move it "
        f"away to start a new store (sqlite3 {database} .recover saves what it can)"
    )


def sqlite_cause(error: BaseException | None) -> sqlite3.DatabaseError | None:
    """The SQLite error behind `error` (SQLAlchemy, MLflow and Optuna wrap it), if any."""
    while error is not None:
        if isinstance(error, sqlite3.DatabaseError):
            return error
        error = getattr(error, "orig", None) or error.__cause__ or error.__context__
    return None


def is_busy(error: sqlite3.DatabaseError) -> bool:
    """A store in use (or a folder that cannot be opened), not a damaged file."""
    return isinstance(error, sqlite3.OperationalError)


def check_writable(url: str, option: str) -> None:
    """A command that writes (search, train, reproduce, delete-study) refuses a local store
    it may only read, up front: SQLite writes the file and a journal beside it. `option`:
    the option that chooses another store (`--tracking-uri`, `--storage`)."""
    database = sqlite_path(url)
    if database is None or not database.exists():
        return  # another kind of store, or a new file (`store_lock` creates it, or says why)
    for path in (database.parent, database):
        if not os.access(path, os.W_OK):  # EROFS on a read-only mount, even for root
            raise UserError(
                f"the store {database} is read-only ({path} cannot be written); this command "
                f"writes to it: make it writable, or choose another store with {option}"
            )


def unwritable(database: Path, error: OSError) -> str:
    """Why a store cannot be created at `database`, and what to do, in one line."""
    if error.errno in (errno.ENOTDIR, errno.EEXIST):  # a file where a folder should be
        where = next((p for p in database.parents if p.is_file()), database.parent)
        return (
            f"cannot create the store {database}: {where} is a file, not a folder; choose "
            "another path with --tracking-uri or --storage"
        )
    why = error.strerror or str(error)
    return (
        f"cannot create the store {database}: {why} ({database.parent}); make the folder "
        "writable or choose another path (--tracking-uri, --storage, MLFLOW_TRACKING_URI, "
        "PIPELINE_STORAGE)"
    )
