"""Using what the searches made: predict with a model, and the MLflow and Optuna UIs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Annotated

import typer

from pipeline import settings
from pipeline.cli import _logging, app, job_command, user_errors
from pipeline.cli.options import CSV, Port, Storage, TrackingUri, grouped
from pipeline.errors import UserError


@app.command()
@user_errors
def ui(
    port: Port = 5000,
    tracking_uri: TrackingUri = None,
) -> None:
    """Start the MLflow UI on 127.0.0.1 against the project's tracking store."""
    settings.check_port(port)
    uri = settings.check_tracking_uri(settings.tracking_uri(tracking_uri))
    if (database := settings.sqlite_path(uri)) is not None:
        database.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        uri,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    if metadata.entry_points(group="mlflow.app", name="pipeline"):
        command += ["--app-name", "pipeline"]  # pages on the model-training view (`ui_app`)
    else:  # a checkout updated without reinstalling: MLflow's UI as it comes
        typer.echo(
            "note: the project's MLflow app is not installed (pip install -e . again): "
            "the UI may open on its GenAI pages; switch with 'Model training' in its sidebar",
            err=True,
        )
    typer.echo(f"MLflow UI for {settings.mask(uri)} at http://127.0.0.1:{port} (Ctrl-C stops it)")
    raise typer.Exit(run_group(command))


@job_command()
@grouped(csv=CSV)
def predict(
    model: Annotated[
        str, typer.Argument(help="A dataset or study name (its champion), or an MLflow model URI.")
    ],
    texts: Annotated[list[str] | None, typer.Argument(help="Texts to classify.")] = None,
    file: Annotated[
        Path | None, typer.Option(help="One text a line, or a CSV (text or feature columns).")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, json or csv.")] = "table",
    tracking_uri: TrackingUri = None,
    csv=None,
) -> None:
    """Labels and probabilities (or values) for raw inputs, from a logged model."""
    _logging(verbose=False)  # before MLflow is imported
    from pipeline import engine

    job = engine.PredictJob(
        model=model,
        texts=tuple(texts or ()),
        file=file,
        fmt=fmt,
        csv=csv,
        tracking_uri=tracking_uri,
    )
    typer.echo(engine.predict(job))


@app.command()
@user_errors
def dashboard(
    port: Port = 8080,
    storage: Storage = None,
) -> None:
    """Serve the Optuna studies with optuna-dashboard on 127.0.0.1."""
    settings.check_port(port)
    url = settings.storage_url(storage)
    if (database := settings.sqlite_path(url)) is not None and not database.is_file():
        raise UserError(f"no Optuna storage at {url}: run a search first")
    from optuna_dashboard import run_server

    typer.echo(f"optuna-dashboard for {settings.mask(url)} at http://127.0.0.1:{port}")
    run_server(url, host="127.0.0.1", port=port)


def run_group(command: list[str], grace: float = 10.0) -> int:
    """Run a server in a process group of its own and stop the whole group (the MLflow UI
    forks uvicorn workers) on Ctrl-C, SIGTERM or SIGHUP; returns its exit code."""

    def stop(signum, frame):
        raise KeyboardInterrupt

    # the server's deprecation notes (Starlette's, once per uvicorn worker) and MLflow's
    # start-up notes are no news to the user
    quiet = {"PYTHONWARNINGS": "ignore", "MLFLOW_LOGGING_LEVEL": "WARNING"}
    server = subprocess.Popen(command, start_new_session=True, env=os.environ | quiet)
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, stop)
    try:
        return server.wait()
    except KeyboardInterrupt:  # asked to stop: not a failure (make would say "Error 130")
        return 0
    finally:
        _stop_group(server, grace)


def _stop_group(server: subprocess.Popen, grace: float) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            return
        try:
            server.wait(grace)
            if sig == signal.SIGTERM:
                time.sleep(0.5)  # let its children leave too, then make sure
        except subprocess.TimeoutExpired:
            continue
