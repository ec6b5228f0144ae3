"""Reaching an MLflow store: MLflow's own notes kept out of a command's output, a tracking
server's requests bounded (one that is not there is one line within seconds), and a store
that cannot be opened said in one line."""

from __future__ import annotations

import logging
import os

from pipeline.errors import UserError
from pipeline.locks import damaged, is_busy, sqlite_cause
from pipeline.settings import mask, sqlite_path

logging.getLogger("alembic").setLevel(logging.WARNING)
# "Creating initial ...", and the traceback it logs for a failed write before our one line
logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
logging.getLogger("mlflow.system_metrics").setLevel(logging.WARNING)  # "Stopping ..."


def quiet(verbose: bool) -> None:
    """MLflow's own notes (its CloudPickle warning, the signature check, "Downloading
    artifacts" bars) kept out of a command's output unless `verbose`. Set in the
    environment before MLflow is imported, so worker processes inherit it."""
    if verbose:
        return
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("mlflow").setLevel(logging.ERROR)  # where MLflow is imported already


# MLflow's own bounds on a request to a tracking server (its defaults: 7 retries, a
# 2 s backoff factor and 120 s a request, minutes in all before an error)
HTTP_BOUNDS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",  # we print where to look
}
# the first request to a server, without retries: seconds to connect, then to answer
PROBE_TIMEOUT = (5, 10)
_reached: set[str] = set()  # the servers this process has reached (probed once each)


def bound_http(uri: str) -> None:
    """For a tracking server (`http(s)://`): MLflow's request bounds, set in the environment
    so worker processes inherit them, and one short request without retries, so that a
    server that is not there is one line within seconds, not minutes of MLflow's retries.
    Every command that talks to a tracking URI calls this first; other URIs pass."""
    if not uri.startswith(("http://", "https://")) or uri in _reached:
        return
    for key, value in HTTP_BOUNDS.items():
        os.environ.setdefault(key, value)  # the user's own settings win
    from mlflow.exceptions import MlflowException
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    try:  # any answer will do (even 401 or 404): the client's calls say what is wrong
        http_request(
            get_default_host_creds(uri),
            "/api/2.0/mlflow/experiments/search",
            "POST",
            json={"max_results": 1},
            max_retries=0,
            timeout=PROBE_TIMEOUT,
        )
    except MlflowException as error:
        raise UserError(
            f"cannot reach the MLflow tracking server at {mask(uri)}: {_network(error)}; start "
            "it (mlflow server ...) or check --tracking-uri / MLFLOW_TRACKING_URI"
        ) from None
    _reached.add(uri)


def store_trouble(uri: str, error: BaseException) -> str:
    """One line for a tracking store that cannot be opened: a damaged SQLite file named
    with its remedy, else MLflow's or SQLAlchemy's first line."""
    database = sqlite_path(uri)
    cause = sqlite_cause(error)
    if database is not None and cause is not None and not is_busy(cause):
        return damaged(database, cause)
    return f"cannot open the MLflow store {mask(uri)}: {_first(error)}"


def _network(error: BaseException) -> str:
    """Why a request failed, from urllib3's reason behind MLflow's long message (less its
    `HTTPConnection(host=..., port=...): ` prefix), else the message's first line."""
    cause: BaseException | None = error
    while cause is not None:
        reason = getattr(cause, "reason", None)  # urllib3's MaxRetryError
        if isinstance(reason, BaseException):
            return str(reason).split("): ", 1)[-1]
        cause = cause.__cause__ or cause.__context__
    return _first(error)


def _first(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
