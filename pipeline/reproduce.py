"""Reproduce a seed notebook's table: every row trained --seeds times, beside its numbers."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from pipeline import datasets, report, settings, tables, tracking
from pipeline.errors import UserError
from pipeline.study import (
    Join,
    Outcome,
    Plan,
    check_workers,
    execute,
    open_study,
    preflight,
    quiet_optuna,
    worker_index,
)


def reproduce_table(
    table: tables.SeedTable,
    seeds: int = 3,
    study_name: str | None = None,
    storage: str | None = None,
    tracking_uri: str | None = None,
    verbose: bool = False,
    n_workers: int = 1,
    join: Join | None = None,
) -> tuple[Outcome, str]:
    """Train every row of a seed table `seeds` times (a grid study); return the comparison."""
    quiet_optuna(verbose)
    if seeds < 1:
        raise UserError(f"--seeds must be at least 1, got {seeds}")
    spec = datasets.get_spec(table.dataset)
    name = study_name or f"reproduce-{table.name}"
    grid = {"row": [row.index for row in table.rows], "replicate": list(range(seeds))}
    check_workers(settings.storage_url(storage), n_workers)
    ready = None if join else preflight(table.dataset, tracking_uri)
    study = open_study(
        name,
        storage,
        spec.task,
        lambda _: optuna.samplers.GridSampler(grid, seed=worker_index(join)),
        optuna.pruners.NopPruner(),
        tracking_uri=tracking_uri,
    )
    plan = Plan(
        table.dataset,
        len(table.rows) * seeds,
        None,
        params_for=lambda trial: (
            table.rows[trial.suggest_categorical("row", grid["row"]) - 1].params
        ),
        seed_for=lambda trial: trial.suggest_categorical("replicate", grid["replicate"]),
        tags={"study": name, "sampler": "grid", "pruner": "none", "table": table.name},
        parent_params={
            "table": table.name,
            "dataset": table.dataset,
            "seeds": seeds,
            "rows": len(table.rows),
        },
        tracking_uri=tracking_uri,
        verbose=verbose,
        workers=n_workers,
    )
    work = (__name__, "reproduce_table", (table, seeds, study_name, storage, tracking_uri, verbose))
    outcome = execute(study, plan, "reproduce", join, work, ready)
    if join is not None:
        return outcome, ""
    data = ready[0] if ready else datasets.load_dataset(table.dataset)
    text = report.reproduction_text(table, _row_results(study, seeds), _baseline(table, data))
    if outcome.parent_run_id:
        tracker = tracking.Tracker(settings.tracking_uri(tracking_uri))
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / f"{table.name}.md").write_text(text)
            tracker.log_artifacts(outcome.parent_run_id, Path(tmp))
    return outcome, text


def _row_results(study: optuna.Study, seeds: int) -> dict[int, list[dict[str, Any]]]:
    """Completed trials per table row: their figures and MLflow run ids."""
    rows: dict[int, list[dict[str, Any]]] = {}
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        if t.params.get("replicate", 0) < seeds:
            rows.setdefault(t.params["row"], []).append(dict(t.user_attrs))
    return rows


def _baseline(table: tables.SeedTable, data) -> float | None:
    """Accuracy of guessing with the test labels shuffled, as the seed notebooks print."""
    if table.baseline != "shuffled_labels":
        return None
    y = data.test.y
    return float(np.mean(np.random.RandomState(0).permutation(y) == y))
