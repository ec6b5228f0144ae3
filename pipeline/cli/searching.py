"""The study commands: datasets, search, train, reproduce, ensemble, export."""

from __future__ import annotations

import json
import re
from typing import Annotated

import typer
import yaml

from pipeline import settings
from pipeline.cli import _write, app, begin, job_command, started, user_errors
from pipeline.cli.options import (
    CSV,
    PLACEMENT,
    STORES,
    AsJson,
    Backend,
    Dataset,
    Output,
    Storage,
    TrackingUri,
    Verbose,
    grouped,
)
from pipeline.errors import UserError


@app.command("datasets")
@user_errors
@grouped(csv=CSV)
def datasets_command(
    as_json: AsJson = False,
    name: Annotated[
        list[str] | None, typer.Argument(help="Only these (also folder:PATH, csv:PATH).")
    ] = None,
    csv=None,
) -> None:
    """List the known datasets: task, split sizes, classes, features and where the data is."""
    from pipeline import datasets

    rows = [datasets.describe(spec) for spec in datasets.specs_of(name, csv)]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    import pandas as pd

    encodings = {row["name"]: row.pop("features") for row in rows if "features" in row}
    typer.echo(pd.DataFrame(rows).to_markdown(index=False))
    for name, features in encodings.items():
        typer.echo(f"\nfeatures of {name}:\n" + pd.DataFrame(features).to_markdown(index=False))


@job_command()
@grouped(stores=STORES, placement=PLACEMENT, csv=CSV)
def search(
    dataset: Dataset,
    space: Annotated[str | None, typer.Option(help="Space file or name in search_spaces/.")] = None,
    n_trials: Annotated[int, typer.Option(help="Finished trials the study should have.")] = 30,
    timeout: Annotated[float | None, typer.Option(help="Stop starting trials after S.")] = 600,
    study: Annotated[str | None, typer.Option(help="Study name (default: dataset).")] = None,
    sampler: Annotated[str, typer.Option(help="tpe, random or grid.")] = "tpe",
    pruner: Annotated[str, typer.Option(help="median, hyperband or none.")] = "median",
    seed: Annotated[int, typer.Option(help="Seed of the sampler and of trial 0.")] = 0,
    heartbeat: Annotated[int, typer.Option(help="Seconds between worker heartbeats.")] = 10,
    objective: Annotated[
        str | None,
        typer.Option(help="accuracy (mae), or two: accuracy,params or accuracy,latency."),
    ] = None,
    warm_start: Annotated[
        list[str] | None,
        typer.Option(help="Try first: a seed table's rows (blog-imdb) or study:NAME's best."),
    ] = None,
    keep: Annotated[
        int, typer.Option(help="Keep the model of the best K trials: the ensemble's pool.")
    ] = settings.KEEP,
    ensemble_size: Annotated[
        int, typer.Option(help="Greedy picks of the ensemble chosen at the end (0: none).")
    ] = settings.ENSEMBLE_SIZE,
    stores=None,
    placement=None,
    csv=None,
) -> None:
    """Run (or resume) an Optuna study; every trial is a child run in MLflow."""
    placement = started(placement)
    from pipeline import engine, summary

    job = engine.SearchJob(
        dataset=dataset,
        space=space,
        csv=csv,
        n_trials=n_trials,
        timeout=timeout,
        study=study,
        sampler=sampler,
        pruner=pruner,
        seed=seed,
        heartbeat=heartbeat,
        objective=objective,
        warm_start=tuple(warm_start or ()),
        keep=keep,
        ensemble_size=ensemble_size,
        **vars(stores),
        **vars(placement),
    )
    outcome = engine.search(job)
    typer.echo(summary.closing_text(outcome))
    failure = summary.nothing_finished(outcome.study)
    if failure:  # every trial failed: the search found nothing, which is not a success
        typer.echo(f"error: {failure}", err=True)
        raise typer.Exit(1)


_LIST = re.compile(r"^\s*\d+(\s*,\s*\d+)+\s*$")


def parse_assignments(pairs: list[str]) -> dict:
    """`key=value` words; values are YAML scalars, and "16,32" is a list of ints."""
    out = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise UserError(f"expected key=value, got {pair!r}")
        out[key] = [int(v) for v in raw.split(",")] if _LIST.match(raw) else _scalar(key, raw)
    return out


def _scalar(key: str, raw: str):
    """A value as YAML reads it (`0.001`, `true`, `relu`); what YAML cannot read is one line."""
    from pipeline import spaces

    try:
        return spaces.read_yaml(raw)
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or "not a YAML value"
        raise UserError(f"{key}={raw}: cannot read the value ({problem})") from None


@job_command()
@grouped(csv=CSV)
def train(
    dataset: Dataset,
    assignments: Annotated[list[str] | None, typer.Argument(help="key=value overrides.")] = None,
    space: Annotated[
        str | None, typer.Option(help="Space file whose defaults to start from.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    tracking_uri: TrackingUri = None,
    verbose: Verbose = False,
    backend: Backend = None,
    csv=None,
) -> None:
    """Train one configuration (the seed recipe plus key=value changes) as one MLflow run."""
    backend = begin(backend=backend, verbose=verbose)
    from pipeline import engine

    job = engine.TrainJob(
        dataset=dataset,
        overrides=parse_assignments(assignments or []),
        space=space,
        csv=csv,
        seed=seed,
        tracking_uri=tracking_uri,
        backend=backend,
        verbose=verbose,
    )
    try:
        run_id, result = engine.train(job)
    except engine.TrainingDiverged as error:  # a valid value that trains badly: exit 1
        typer.echo(f"error: training diverged: {error}; its MLflow run is FAILED", err=True)
        raise typer.Exit(1) from None
    figures = {result.val_metric: result.val_value, **result.test}
    typer.echo(" ".join(f"{k}={v:.4f}" for k, v in figures.items()))
    typer.echo(f"epochs={result.epochs_run} seconds={result.seconds:.1f} mlflow_run={run_id}")


@job_command()
@grouped(stores=STORES, placement=PLACEMENT)
def reproduce(
    table: Annotated[str, typer.Argument(help="blog-imdb, book-reuters, book-boston or a YAML.")],
    seeds: Annotated[int, typer.Option(help="Trainings per row, reported as mean ± std.")] = 3,
    output: Output = None,
    study: Annotated[
        str | None, typer.Option(help="Study name (default: reproduce-TABLE).")
    ] = None,
    stores=None,
    placement=None,
) -> None:
    """Train every row of a seed notebook's table and compare with the seed's numbers."""
    placement = started(placement)
    from pipeline import engine

    job = engine.ReproduceJob(
        table=table, seeds=seeds, study=study, **vars(stores), **vars(placement)
    )
    _, text = engine.reproduce(job)
    _write(text, output)


@job_command()
def ensemble(
    study: Annotated[str, typer.Argument(help="A finished study (a dataset's is its name).")],
    size: Annotated[
        int, typer.Option(help="Greedy picks (with replacement).")
    ] = settings.ENSEMBLE_SIZE,
    storage: Storage = None,
    tracking_uri: TrackingUri = None,
    backend: Backend = None,
    verbose: Verbose = False,
) -> None:
    """Choose again the ensemble of a study's kept trials; register it if it wins."""
    begin(backend=backend, verbose=verbose)
    from pipeline import engine, summary

    job = engine.EnsembleJob(study=study, size=size, storage=storage, tracking_uri=tracking_uri)
    typer.echo(summary.ensemble_text(engine.ensemble(job)))


@app.command()
@user_errors
@grouped(csv=CSV)
def export(
    dataset: Annotated[str, typer.Argument(help="The MLflow experiment (dataset name).")],
    study: Annotated[str | None, typer.Option(help="Study name (default: the dataset).")] = None,
    all_studies: Annotated[bool, typer.Option("--all-studies", help="Rank every study.")] = False,
    top: Annotated[int, typer.Option(help="How many trials.")] = 10,
    metric: Annotated[str | None, typer.Option(help="Rank by this MLflow metric.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="markdown or csv.")] = "markdown",
    output: Output = None,
    tracking_uri: TrackingUri = None,
    csv=None,
) -> None:
    """Export the best trials of a study from MLflow as a markdown or CSV table."""
    from pipeline import datasets, report, tracking

    report.check_format(fmt)
    if top < 1:
        raise UserError(f"--top must be at least 1, got {top}")
    experiment = datasets.dataset_name(dataset, csv)
    chosen = None if all_studies else (study or experiment)
    tracker = tracking.Tracker(settings.tracking_uri(tracking_uri))
    runs = tracker.trial_runs(experiment, chosen)
    if not runs:
        label = f"study {chosen!r}" if chosen else "any study"
        raise UserError(f"no trial runs of {label} in MLflow experiment {experiment!r}")
    members = tracker.ensemble_members(experiment, chosen) if chosen else {}
    _write(report.export_text(runs, metric, top, fmt, ensemble=members), output)
