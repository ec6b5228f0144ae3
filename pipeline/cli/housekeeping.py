"""The housekeeping commands: studies (what a storage holds) and delete-study (a study from
Optuna and its runs from MLflow, in one step)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from pipeline import settings
from pipeline.cli import app, user_errors
from pipeline.cli.options import AsJson, Storage, TrackingUri


@app.command("studies")
@user_errors
def studies_command(
    as_json: AsJson = False,
    storage: Storage = None,
) -> None:
    """List the studies of a storage: trials by state, best value(s), last activity."""
    from pipeline import engine

    url = settings.storage_url(storage)
    rows = engine.study_summaries(url)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo(f"no studies in {settings.mask(url)}")
        return
    import pandas as pd

    typer.echo(pd.DataFrame([_shown(row) for row in rows]).to_markdown(index=False))


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    """A summary as a table row: blanks for what is missing, values to 6 figures."""
    best = row["best"]
    values = best if isinstance(best, list) else [] if best is None else [best]
    return row | {
        "directions": ", ".join(row["directions"]),
        "best_trial": "" if row["best_trial"] is None else str(row["best_trial"]),
        "best": ", ".join(f"{v:.6g}" for v in values),
        "last_activity": row["last_activity"] or "",
    }


@app.command("delete-study")
@user_errors
def delete_study_command(
    name: Annotated[str, typer.Argument(help="The study (pipeline studies lists them).")],
    yes: Annotated[bool, typer.Option("--yes", help="Delete without asking.")] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Also delete a study that searches which are gone left RUNNING (their "
            "runs set KILLED first); a study being searched now is never deleted.",
        ),
    ] = False,
    storage: Storage = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Delete a study from Optuna and mark its MLflow runs (invocations, trials) deleted;
    refused while a search runs it."""
    from pipeline import engine, locks, tracking
    from pipeline.engine import housekeeping

    url = settings.storage_url(storage)
    summary = engine.study_summary(url, name)  # first: a missing study is an error
    locks.check_writable(url, "--storage")  # it deletes from both stores
    locks.check_writable(settings.tracking_uri(tracking_uri), "--tracking-uri")
    tracker = tracking.Tracker(settings.tracking_uri(tracking_uri))
    runs = len(tracker.study_run_ids(name))
    found = _deletable(url, tracker, name, force)
    trials = _count(summary["trials"], "trial")
    running = f", {summary['RUNNING']} of them RUNNING" if summary["RUNNING"] else ""
    where = f"from {settings.mask(url)}"
    leftovers = len(found.dead_parents) + len(found.trial_runs)
    if not yes:
        if not _confirm(
            f"Delete study {name!r} ({trials}{running}) {where} and mark its "
            f"{_count(runs, 'MLflow run')} deleted{_killed(leftovers)} in "
            f"{settings.mask(tracker.uri)}?"
        ):
            typer.echo("nothing deleted", err=True)
            raise typer.Exit(1)
        found = _deletable(url, tracker, name, force)  # a search may have started meanwhile
    # MLflow first: should either step fail, running the command again finishes the job
    # (with the study gone, its runs could no longer be found by its name here)
    leftovers = housekeeping.kill_leftovers(tracker, found)
    deleted = tracker.delete_study_runs(name)
    engine.delete_study(url, name)
    typer.echo(f"deleted study {name!r} ({trials}) {where}")
    uri = settings.mask(tracker.uri)
    marked = f"marked {_count(deleted, 'MLflow run')} deleted{_killed(leftovers)}"
    typer.echo(f"{marked}; to purge every deleted run:")
    if tracker.uri.startswith(("http://", "https://")):
        typer.echo(f"  on the server: mlflow gc --backend-store-uri ITS_STORE --tracking-uri {uri}")
    else:
        typer.echo(f"  mlflow gc --backend-store-uri {uri} --tracking-uri {uri}")


def _deletable(url: str, tracker, name: str, force: bool):
    """What of the study is RUNNING; a UserError (one line, exit code 2) when it may not
    be deleted (`engine.housekeeping.refusal`)."""
    from pipeline.engine import housekeeping
    from pipeline.errors import UserError

    found = housekeeping.study_activity(url, tracker, name)
    why = housekeeping.refusal(name, found, force, tracker.uri)
    if why is not None:
        raise UserError(why)
    return found


def _killed(leftovers: int) -> str:
    """The runs that dead searches left RUNNING, set KILLED before they are deleted."""
    return f" ({leftovers} left RUNNING set KILLED first)" if leftovers else ""


def _confirm(question: str) -> bool:
    """The user's answer; no answer (stdin closed) is a no."""
    try:
        return typer.confirm(question, default=False)
    except typer.Abort:
        return False


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")
