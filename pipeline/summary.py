"""What a search prints at its end: the best trial against the recipe, the top few trials
with the settings that vary, and where to look next, in a terminal of about 110 columns.
The full table goes to the export and the parent run."""

from __future__ import annotations

import textwrap

import pandas as pd

from pipeline import report, tracking, trial_record
from pipeline.engine.studies import RECIPE
from pipeline.metrics import TASK_METRICS
from pipeline.trial_record import TrialRecord

WIDTH = 110
# settings in the order they are kept when the table must shrink to fit
PRIORITY = (
    "family",
    "output_mode",
    "n_layers",
    "units",
    "loss",
    "optimizer",
    "learning_rate",
    "dropout",
    "activation",
    "epochs",
    "batch_size",
)
SHORT = {
    "n_layers": "layers",
    "activation": "act",
    "optimizer": "opt",
    "learning_rate": "lr",
    "batch_size": "batch",
    "max_tokens": "tokens",
    "output_mode": "mode",
    "embedding_dim": "dim",
    "sequence_length": "length",
}


LONG = {short: name for name, short in SHORT.items()}


def summary_text(study, top: int = 5, width: int = WIDTH) -> str:
    """Best against recipe, then the top trials; `study`: an Optuna study."""
    metric = trial_record.study_metric(study)
    records = trial_record.study_records(study)
    table = report.top_trials(records, metric, trial_record.minimizes(study))
    if table.frame.empty:
        return "(no completed trials)"
    by_number = {r.number: r for r in records}
    best = by_number[table.frame["trial"].iloc[0]]
    done = [r for r in records if r.state == tracking.COMPLETE]
    recipe = next((r for r in done if r.enqueued == RECIPE), None)
    lines = _versus(best, recipe, metric)
    frame = _top_frame(table, top, metric, _test_metric(best))
    text, dropped = _fit(frame, width)
    lines += ["", f"Top {len(frame)} by {metric} (the settings that vary):", text]
    if dropped:  # the export shows them
        names = ", ".join(LONG.get(c, c) for c in dropped)
        lines += textwrap.wrap(f"Also varying, left out to fit {width} columns: {names}.", width)
    return "\n".join(lines)


def _versus(best: TrialRecord, recipe: TrialRecord | None, metric: str) -> list[str]:
    test = _test_metric(best)
    rows = [("best", best)] + ([("recipe", recipe)] if recipe is not None else [])
    lines = [
        f"{label:<7}trial {t.number:<4} {metric} {t.figure(metric):.4f}   "
        f"{test} {t.metrics.get(test, float('nan')):.4f}   "
        f"best/run epochs {_epochs(t.best_epoch, t.epochs_run)}"
        for label, t in rows
    ]
    if recipe is not None and recipe.number != best.number and test in recipe.metrics:
        gain = best.metrics.get(test, float("nan")) - recipe.metrics[test]
        unit = "points" if "accuracy" in test else ""
        shown = f"{gain * 100:+.2f} points" if unit else f"{gain:+.3f}"
        lines.append(f"best - recipe on {test}: {shown}")
    elif recipe is not None:
        lines.append("the recipe is the best trial so far")
    return lines


def _top_frame(table: report.TopTrials, top: int, metric: str, test: str) -> pd.DataFrame:
    """The first `top` rows of the top-trials table: the settings that vary (in the order
    they are kept, short names), the metric, one test figure and the epochs."""
    rank = {name: i for i, name in enumerate(PRIORITY)}
    varying = sorted(table.settings, key=lambda k: (rank.get(k, 99), k))
    rows = [
        {"trial": row["trial"]}
        | {SHORT.get(k, k): "" if row[k] is None else row[k] for k in varying}
        | {metric: row[metric], test: row.get(test)}
        | {"best/run epochs": _epochs(row["best_epoch"], row["epochs_run"])}
        for row in table.frame.head(top).to_dict("records")
    ]
    return pd.DataFrame(rows)


def _test_metric(record: TrialRecord) -> str:
    names = (f"test_{m}" for m in TASK_METRICS)
    return next((k for k in names if k in record.metrics), "test")


def _epochs(best, ran) -> str:
    """Best epoch / epochs run."""
    return f"{best}/{ran}" if best else str(ran)


def _fit(frame: pd.DataFrame, width: int) -> tuple[str, list[str]]:
    """The markdown table, dropping settings columns from the right until it fits; and the
    columns it dropped."""
    fixed = {"trial", *frame.columns[-3:]}
    dropped: list[str] = []
    while True:
        text = frame.to_markdown(index=False, floatfmt=".4g")
        droppable = [c for c in frame.columns if c not in fixed]
        if len(text.splitlines()[0]) <= width or not droppable:
            return text, dropped
        dropped.insert(0, droppable[-1])
        frame = frame.drop(columns=droppable[-1])
