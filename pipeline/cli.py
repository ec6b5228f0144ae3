"""Command line: parse options, call one function, turn user errors into one line + exit 2."""

from __future__ import annotations

import functools
import json
import logging
import os
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
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(2) from None

    return wrapper


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("pipeline").setLevel(logging.INFO)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # retracing notes, not user news


@app.command("datasets")
@user_errors
def datasets_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
    name: Annotated[list[str] | None, typer.Argument(help="Only these datasets.")] = None,
) -> None:
    """List the known datasets: task, split sizes, classes, features and where the data is."""
    from pipeline import datasets

    rows = [datasets.describe(n) for n in (name or list(datasets.SPECS))]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    import pandas as pd

    typer.echo(pd.DataFrame(rows).to_markdown(index=False))


def main() -> None:
    app()
