"""Command line: parse options, build one plan, hand it over, print; user errors become one
line on stderr and exit code 2. The commands live in `searching` (datasets, search, train,
reproduce, export) and `serving` (predict, ui, dashboard)."""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path
from typing import Annotated

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before anything imports TensorFlow

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


def _logging(verbose: bool, tensorflow: bool = True) -> None:
    """Log levels; and TensorFlow imported now without its start-up notes (unless verbose),
    except in a parent that only hands trials to workers (`tensorflow=False`): it imports
    TensorFlow when it first needs it (its best model), and holds ~550 MB less meanwhile."""
    from pipeline import tracking

    tracking.quiet(verbose)  # before anything imports MLflow
    if not verbose and tensorflow:
        from pipeline import quiet

        quiet.import_tensorflow()
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("pipeline").setLevel(logging.INFO)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # retracing notes, not user news
    logging.getLogger("urllib3").setLevel(logging.ERROR)  # MLflow's retries; we report once


Backend = Annotated[
    str | None,
    typer.Option(help="Keras backend: tensorflow (default), jax or torch (or KERAS_BACKEND)."),
]


def _backend(option: str | None) -> str:
    """The Keras backend this command trains on, selected before anything imports Keras."""
    from pipeline import backends

    name = backends.chosen(option)
    backends.select(name)
    return name


RayAddress = Annotated[
    str | None,
    typer.Option(
        "--ray",
        help="Place the workers with Ray: local (a private Ray for this command), auto "
        "(the cluster this machine joined) or HOST:PORT / ray://HOST:PORT.",
    ),
]
CpusPerWorker = Annotated[
    float | None, typer.Option(help="With --ray: CPUs per worker (default: the cluster's / N).")
]
GpusPerWorker = Annotated[
    float, typer.Option(help="With --ray: GPUs per worker; 0.25 lets four share one GPU.")
]
StoreWait = Annotated[
    float | None,
    typer.Option(
        help="Seconds a store that goes away (a database or tracking server restarting) is "
        "waited for before the command stops (default 60, or PIPELINE_STORE_WAIT)."
    ),
]
TextCol = Annotated[str | None, typer.Option(help="csv:PATH: the text column (a text dataset).")]
LabelCol = Annotated[str | None, typer.Option(help="csv:PATH: the label column.")]
FeatureCols = Annotated[
    str | None, typer.Option(help="csv:PATH tables: feature columns, a,b,c (default: all).")
]
Task = Annotated[
    str | None, typer.Option(help="csv:PATH tables: regression, binary or multiclass.")
]
KFolds = Annotated[
    int | None, typer.Option(help="csv:PATH tables: folds (0: a held-out validation split).")
]


def csv_options(text_col=None, label_col=None, feature_cols=None, task=None, k_folds=None):
    """The CSV options of a command, as one value (`pipeline.datasets.CsvOptions`)."""
    from pipeline.datasets import CsvOptions

    features = tuple(c.strip() for c in (feature_cols or "").split(",") if c.strip())
    return CsvOptions(text_col, label_col, features, task, k_folds)


DATASET_HELP = "A dataset `pipeline datasets` lists, folder:PATH or csv:PATH."


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
