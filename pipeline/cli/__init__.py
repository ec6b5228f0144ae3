"""Command line: parse options (`options` declares the shared ones once), build one job,
hand it to the engine, print; user errors become one line on stderr and exit code 2. The
commands live in `searching` (datasets, search, train, reproduce, export), `serving`
(predict, ui, dashboard) and `housekeeping` (studies, delete-study); `--ray` places a
search's or a reproduction's workers on a Ray cluster."""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before anything imports TensorFlow
# Click's plain help and usage errors: Typer's Rich panels cost 0.1-0.2 s of every
# `--help` (importing and drawing them); TYPER_USE_RICH=1 brings them back
os.environ.setdefault("TYPER_USE_RICH", "0")

import typer  # noqa: E402

from pipeline.errors import UserError  # noqa: E402

app = typer.Typer(
    help="Tracked, reproducible hyperparameter searches for small Keras networks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Tracked, reproducible hyperparameter searches for small Keras networks."""


def user_errors(command):
    """One line on stderr and exit code 2 for problems the user can fix."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except UserError as error:
            typer.echo("error: " + " ".join(str(error).split()), err=True)  # one line
            raise typer.Exit(2) from None

    return wrapper


def job_command(name: str | None = None):
    """Register a command that runs a job: its user errors are one line (`user_errors`),
    its signals handled from its first line (`interruptible`)."""

    def register(command):
        return app.command(name)(user_errors(interruptible(command)))

    return register


def interruptible(command):
    """SIGINT, SIGTERM and SIGHUP handled from the command's first line (`stopping`): the
    engine closes what it opened and says how to resume; the exit code is 128 + the
    signal's number (130 for Ctrl-C), after one line on stderr."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from pipeline import stopping
        from pipeline.errors import Interrupted

        stopping.install()
        try:
            return command(*args, **kwargs)
        except Interrupted as error:
            typer.echo(f"\n{error}", err=True)
            raise typer.Exit(stopping.exit_code()) from None
        except KeyboardInterrupt:  # before anything was opened: nothing to close
            typer.echo("\ninterrupted before anything was written", err=True)
            raise typer.Exit(stopping.exit_code()) from None

    return wrapper


def _logging(verbose: bool) -> None:
    """Log levels, and MLflow's own logging quiet unless `verbose`. TensorFlow is not
    imported here: the engine imports it without its start-up notes where it first needs
    it (`backends.start`, the data's `TextVectorization`), so a command that stops on a
    bad option or an unreachable store answers before TensorFlow loads (~8 s)."""
    from pipeline import tracking

    tracking.quiet(verbose)  # before anything imports MLflow
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("pipeline").setLevel(logging.INFO)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # retracing notes, not user news
    logging.getLogger("urllib3").setLevel(logging.ERROR)  # MLflow's retries; we report once


def begin(*, backend: str | None, verbose: bool) -> str:
    """A training command's first step: the Keras backend selected before anything imports
    Keras (returned), then the log levels."""
    from pipeline import backends

    name = backends.chosen(backend)
    backends.select(name)
    _logging(verbose)
    return name


def started(placement):
    """A placement (`pipeline.engine.Placement`) with its Keras backend selected (`begin`)."""
    from dataclasses import replace

    return replace(placement, backend=begin(backend=placement.backend, verbose=placement.verbose))


def _write(text: str, output: Path | None) -> None:
    """Print, or write the file whole (a temp file renamed into place)."""
    if output is None:
        typer.echo(text)
        return
    try:
        partial = output.with_name(output.name + ".partial")
        partial.write_text(text)
        partial.replace(output)
    except OSError as error:
        raise UserError(f"cannot write {output}: {error.strerror}") from None
    typer.echo(f"wrote {output}")


def main() -> None:
    app()


from pipeline.cli import housekeeping, searching, serving  # noqa: E402, F401  (registers the commands)
