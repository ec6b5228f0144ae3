"""`pipeline reproduce`: a seed table's rows run as a grid study, then compared with the
numbers the notebook reported."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from pipeline import report, tables, tracking
from pipeline.engine import runner
from pipeline.engine.plan import Plan, TableTrials


def reproduce(plan: Plan) -> tuple[runner.Outcome, str]:
    """Run the table's plan; return the outcome and the markdown comparison (also logged to
    the parent run)."""
    assert isinstance(plan.trials, TableTrials)
    outcome = runner.run(plan)
    table = plan.trials.table
    results = row_results(outcome.study, plan.trials.replicates)
    text = report.reproduction_text(table, results, baseline(table, outcome.data))
    if outcome.parent_run_id:
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / f"{table.name}.md").write_text(text)
            tracking.Tracker(plan.stores.tracking).log_artifacts(outcome.parent_run_id, Path(tmp))
    return outcome, text


def row_results(study: optuna.Study, replicates: int) -> dict[int, list[dict[str, Any]]]:
    """Completed trials per table row: their metrics and MLflow run ids."""
    rows: dict[int, list[dict[str, Any]]] = {}
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        if t.params.get("replicate", 0) < replicates:
            rows.setdefault(t.params["row"], []).append(dict(t.user_attrs))
    return rows


def baseline(table: tables.SeedTable, data) -> float | None:
    """Accuracy of guessing with the test labels shuffled, as the seed notebooks print."""
    if table.baseline != "shuffled_labels":
        return None
    y = data.test.y
    return float(np.mean(np.random.RandomState(0).permutation(y) == y))
