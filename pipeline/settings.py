"""Where things live: data folder, tracking store, study storage (the shared contract)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from pipeline.errors import UserError

DEFAULT_TRACKING_URI = "sqlite:///mlruns/mlflow.db"
DEFAULT_STORAGE = "sqlite:///mlruns/optuna.db"
# What a search keeps and chooses at its end: the end-to-end models of its best KEEP
# trials, and an ensemble of ENSEMBLE_SIZE greedy picks among them
KEEP, ENSEMBLE_SIZE = 20, 25


def data_dir() -> Path:
    """`PIPELINE_DATA_DIR`, else Keras' own dataset cache; a file there (or above it) is one
    line, not an error from the first `mkdir` deep in a download."""
    raw = os.environ.get("PIPELINE_DATA_DIR") or "~/.keras/datasets"
    path = Path(raw).expanduser().resolve()
    blocker = next((p for p in (path, *path.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        name = "PIPELINE_DATA_DIR" if os.environ.get("PIPELINE_DATA_DIR") else "the data folder"
        why = "it is a file" if blocker == path else f"{blocker} is a file"
        raise UserError(
            f"{name} {path} is not a folder ({why}); point PIPELINE_DATA_DIR at a folder "
            "(the datasets are read, or downloaded, there)"
        )
    return path


def find_space_file(relative: str) -> Path:
    """A file of the search spaces (`imdb.yaml`, `tables/blog-imdb.yaml`): the user's own in
    `search_spaces/` of the working directory, else the one shipped with the package. The
    shipped path is returned when neither exists, for the error to name."""
    local = Path("search_spaces") / relative
    return local if local.is_file() else packaged_spaces() / relative


def packaged_spaces() -> Path:
    """The default spaces and seed tables: package data of `pipeline`, in its
    `search_spaces/` (in a checkout, a link to the top-level folder)."""
    from importlib.resources import files

    return Path(str(files("pipeline") / "search_spaces"))


def tracking_uri(override: str | None = None) -> str:
    return override or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


TRACKING_SCHEMES = ("sqlite", "http", "https", "file", "postgresql", "mysql", "mssql")


def check_tracking_uri(uri: str) -> str:
    """A tracking URI MLflow can store runs at; anything else is one line for the user."""
    scheme = urlsplit(uri).scheme.split("+")[0]
    if scheme not in TRACKING_SCHEMES:
        raise UserError(
            f"unsupported MLflow tracking URI {mask(uri)!r}: use sqlite:///PATH, "
            "http(s)://HOST:PORT (a tracking server), postgresql://... or file:PATH"
        )
    return uri


def check_port(port: int) -> int:
    if not 1 <= port <= 65535:
        raise UserError(f"--port must be between 1 and 65535, got {port}")
    return port


STORE_WAIT = 60.0  # seconds a store that went away (a restart, a failover) is waited for


def store_wait(override: float | None = None) -> float:
    """`--store-wait`, else `PIPELINE_STORE_WAIT`, else a minute."""
    raw = override if override is not None else os.environ.get("PIPELINE_STORE_WAIT")
    if raw is None or raw == "":
        return STORE_WAIT
    try:
        seconds = float(raw)
    except ValueError:
        raise UserError(f"PIPELINE_STORE_WAIT must be a number of seconds, got {raw!r}") from None
    if not (0 <= seconds < float("inf")):
        raise UserError(f"--store-wait must be 0 or more seconds, got {raw}")
    return seconds


def storage_url(override: str | None = None) -> str:
    return override or os.environ.get("PIPELINE_STORAGE") or DEFAULT_STORAGE


def sqlite_path(url: str) -> Path | None:
    """The database file of a `sqlite:///...` URL (query string dropped), else None."""
    if not url.startswith("sqlite:///"):
        return None
    return Path(url.removeprefix("sqlite:///").split("?")[0])


def mask(url: str) -> str:
    """The URL with its password replaced by ***, for printing and logging."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))
