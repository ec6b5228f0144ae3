"""`pipeline reproduce`: a seed table's rows run as a grid study, then compared with the
numbers the notebook reported."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import optuna

from pipeline import report, seed_tables, tracking, trial_record
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


def row_results(study: optuna.Study, replicates: int) -> dict[int, list[trial_record.TrialRecord]]:
    """Completed trials per table row: their records (metrics and MLflow run ids)."""
    rows: dict[int, list[trial_record.TrialRecord]] = {}
    for record in trial_record.study_records(study, states=(tracking.COMPLETE,)):
        if record.params.get("replicate", 0) < replicates:
            rows.setdefault(record.params["row"], []).append(record)
    return rows


def baseline(table: seed_tables.SeedTable, data) -> float | None:
    """Accuracy of guessing with the test labels shuffled, as the seed notebooks print."""
    if table.baseline != "shuffled_labels":
        return None
    y = data.test.y
    return float(np.mean(np.random.RandomState(0).permutation(y) == y))
