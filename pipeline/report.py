"""Tables for people: the top trials of a study (read from Optuna or from their MLflow runs)
and the reproduced seed tables, as pandas frames rendered to markdown or CSV."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipeline import seed_tables, tracking, trial_record
from pipeline.errors import UserError
from pipeline.metrics import SECOND_OBJECTIVES, TASK_METRICS, lower_is_better, ranking_key
from pipeline.params import layer_units
from pipeline.trial_record import TrialRecord

ON_FRONT = "✓"  # a trial on the Pareto front, in the `pareto` column


@dataclass(frozen=True)
class TopTrials:
    """The one table of top trials (`top_trials`), and which of its columns are which."""

    frame: pd.DataFrame  # one row per completed trial, best first
    settings: list[str]  # the settings that vary
    tests: list[str]  # the test figures


def top_trials(
    records: list[TrialRecord], metric: str, minimize: bool, second: str | None = None
) -> TopTrials:
    """The completed trials of `records` (read from an Optuna study or from MLflow runs),
    best first by the one rule (`metrics.ranking_key`) on `metric`. Columns: trial; the
    settings that vary over every record (failed and pruned too); `metric`; with a `second`
    objective, its value and whether the trial is on the Pareto front of the two; the test
    figures; epochs_run, best_epoch, seconds, run_id. The search's summary, the parent
    run's `top_trials.md` and `pipeline export` show columns and rows of it."""
    done = [r for r in records if r.state == tracking.COMPLETE]
    done.sort(key=lambda r: ranking_key(r.figure(metric), r.number, minimize))
    settings = varying(records)
    tests = sorted({k for r in done for k in r.metrics if k.startswith("test_")} - {metric})
    objectives = [metric, second] if second else [metric]
    rows = [
        {"trial": r.number, **{s: r.settings.get(s) for s in settings}}
        | {name: r.figure(name) for name in objectives}
        | {t: r.metrics.get(t) for t in tests}
        | {"epochs_run": r.epochs_run, "best_epoch": r.best_epoch, "seconds": r.seconds}
        | {"run_id": r.run_id}
        for r in done
    ]
    frame = pd.DataFrame(rows, dtype=object)  # values as read: ints stay ints, not floats
    if second and rows:
        signs = np.array([1 if minimize else -1, 1 if lower_is_better(second) else -1])
        front = pareto_front(frame[objectives].astype(float).to_numpy() * signs)
        frame.insert(frame.columns.get_loc(second) + 1, "pareto", np.where(front, ON_FRONT, ""))
    return TopTrials(frame, settings, tests)


def varying(records: list[TrialRecord]) -> list[str]:
    """The settings whose value differs between `records` (a record without one counts as
    a value of its own), by name."""
    settings = [r.settings for r in records]
    names = sorted({name for s in settings for name in s})
    return [n for n in names if len({s.get(n) for s in settings}) > 1]


def trials_frame(study, top: int | None = None) -> pd.DataFrame:
    """The parent run's table (`top_trials.md`) of an Optuna study: its top trials by
    number, the settings that vary, the objective (with two: both, and whether the trial is
    on the Pareto front), test figures, epochs run and seconds."""
    metric, *second = trial_record.value_names(study)
    records = trial_record.study_records(study)
    table = top_trials(records, metric, trial_record.minimizes(study), *second)
    if table.frame.empty:
        return table.frame
    extra = [*second, "pareto"] if second else []
    columns = ["trial", *table.settings, metric, *extra, *table.tests, "epochs_run", "seconds"]
    frame = table.frame[columns]
    return frame.head(top) if top else frame


def to_text(frame: pd.DataFrame, fmt: str = "markdown") -> str:
    if frame.empty:
        return "(no finished trials)"
    if fmt == "csv":
        return frame.to_csv(index=False)
    frame = frame.astype(object).where(frame.notna(), None)  # blank, not "nan"
    return frame.to_markdown(index=False, floatfmt=".4g", missingval="")


# --- reproduced seed tables --------------------------------------------------------------


def _mean_std(values: list[float], scale: float = 1.0, digits: int = 3) -> str:
    if not values:
        return "—"
    arr = np.asarray(values) * scale
    return f"{arr.mean():.{digits}f} ± {arr.std():.{digits}f}"


def _setting(row, columns) -> dict[str, Any]:
    units = layer_units(row.params)
    values = {"setting": row.setting, "n_layers": len(units), "units": ",".join(map(str, units))}
    return {c: values.get(c, row.params.get(c)) for c in columns}


def _value(result: TrialRecord, split: str, name: str) -> float:
    return result.metrics[f"final_val_{name}" if split == "val" else f"test_{name}"]


def _classification_row(row, results: list[TrialRecord]) -> dict[str, Any]:
    acc = [_value(r, row.split, "accuracy") for r in results]
    loss = [_value(r, row.split, "loss") for r in results]
    delta = f"{np.mean(acc) * 100 - row.reported['accuracy'] * 100:+.2f}" if acc else "—"
    return {
        "seed loss": row.reported.get("loss"),
        "our loss": _mean_std(loss),
        "seed acc %": round(row.reported["accuracy"] * 100, 2),
        "our acc %": _mean_std(acc, 100, 2),
        "Δ acc (pts)": delta,
    }


def _regression_row(row, results: list[TrialRecord]) -> dict[str, Any]:
    mae = [r.metrics["final_val_mae"] for r in results]
    k = len(row.reported.get("folds", []))
    folds = (
        [
            float(np.mean([r.metrics.get(f"fold_{i}_val_mae", np.nan) for r in results]))
            for i in range(1, k + 1)
        ]
        if results
        else []
    )
    return {
        "seed MAE": row.reported["mae"],
        "our MAE": _mean_std(mae, digits=2),
        "Δ MAE": f"{np.mean(mae) - row.reported['mae']:+.2f}" if mae else "—",
        "seed folds": ", ".join(f"{v:.2f}" for v in row.reported.get("folds", [])),
        "our folds (mean)": ", ".join(f"{v:.2f}" for v in folds),
        "our test MAE": _mean_std([r.metrics["test_mae"] for r in results], digits=2),
    }


def reproduction_frame(table, results: dict[int, list[TrialRecord]]) -> pd.DataFrame:
    """One line per seed row: its settings, the seed's numbers, ours (mean ± std), run ids."""
    lines = []
    for row in table.rows:
        got = results.get(row.index, [])
        reg = "mae" in row.reported
        values = _regression_row(row, got) if reg else _classification_row(row, got)
        runs = ", ".join((r.run_id or "")[:8] for r in got)
        lines.append(
            {
                "#": row.index,
                **_setting(row, table.columns),
                "split": row.split,
                **values,
                "n": len(got),
                "runs": runs,
            }
        )
    return pd.DataFrame(lines)


def _row_means(results: dict[int, list[TrialRecord]]) -> dict[int, dict[str, float]]:
    means = {}
    for index, got in results.items():
        numbers = [_numbers(r) for r in got]
        keys = {k for n in numbers for k in n}
        means[index] = {
            k.removeprefix("final_"): float(np.mean([n[k] for n in numbers if k in n]))
            for k in keys
        }
    return means


def _numbers(record: TrialRecord) -> dict[str, float]:
    """A reproduced row's figures, epochs and seconds."""
    extra = {"epochs_run": record.epochs_run, "best_epoch": record.best_epoch}
    figures = record.metrics | extra | {"seconds": record.seconds}
    return {k: v for k, v in figures.items() if isinstance(v, int | float)}


def conclusion_lines(table, results: dict[int, list[TrialRecord]]) -> list[str]:
    means = _row_means(results)
    lines = []
    for c in table.conclusions:
        needed = set(c.rows) | set(c.than)
        if not needed <= set(means):
            lines.append(f"- [ ] {c.claim}: not checked yet (rows missing)")
            continue
        verdict = "confirmed" if seed_tables.holds(c, means) else "NOT confirmed"
        lines.append(
            f"- [{'x' if verdict == 'confirmed' else ' '}] {c.claim}: {verdict} by our {c.metric}"
        )
    return lines


def reproduction_text(table, results: dict[int, list[TrialRecord]], baseline: float | None) -> str:
    """The markdown report of `pipeline reproduce`."""
    frame = reproduction_frame(table, results)
    parts = [
        f"## {table.name}: {table.source}",
        "",
        frame.to_markdown(index=False, floatfmt="g", missingval=""),
        "",
    ]
    if "Δ acc (pts)" in frame:
        close = sum(abs(float(d)) <= 1.0 for d in frame["Δ acc (pts)"] if d != "—")
        parts.append(
            f"Our mean is within 1.0 point of the seed's accuracy on {close} of "
            f"{len(frame)} rows. Rows with split `val` compare validation figures, "
            "the others test figures."
        )
    if baseline is not None:
        parts.append(
            f"Random-guess baseline (test labels shuffled): {baseline * 100:.2f}% accuracy."
        )
    lines = conclusion_lines(table, results)
    if lines:
        parts += ["", "The seed's conclusions, checked against our means:", *lines]
    return "\n".join(parts) + "\n"


# --- exports from MLflow -----------------------------------------------------------------

_FINAL_METRICS = tuple(f"final_val_{m}" for m in TASK_METRICS)  # the default, by task
_LEFT_OUT = {tracking.FAIL: "failed", tracking.PRUNED: "pruned"}


def pareto_front(values: np.ndarray) -> np.ndarray:
    """Which rows no other row dominates (every column minimized)."""
    better_or_equal = (values[None, :, :] <= values[:, None, :]).all(axis=2)
    strictly_better = (values[None, :, :] < values[:, None, :]).any(axis=2)
    return ~(better_or_equal & strictly_better).any(axis=1)


def export_frame(
    runs: list[dict],
    metric: str | None = None,
    top: int | None = None,
    ensemble: dict[int, int] | None = None,
) -> tuple[pd.DataFrame, str, str]:
    """Ranked completed trial runs (`top_trials`), a heading, and a note on the failed and
    pruned runs left out. A two-objective study's export is its Pareto front, ranked by the
    first objective, under a heading that says so. `ensemble`: the members of the study's
    ensemble (trial -> picks), shown as each trial's weight in it."""
    records = [trial_record.from_run(r) for r in runs]
    done = [r for r in records if r.state == tracking.COMPLETE]
    left_out = pd.Series([r.state for r in records if r.state != tracking.COMPLETE])
    counts = left_out.value_counts().items()
    note = ", ".join(f"{n} {_LEFT_OUT.get(state, state.lower())}" for state, n in counts)
    if not done:
        return pd.DataFrame(), "", note
    metric = metric or next(
        (m for m in _FINAL_METRICS if any(m in r.metrics for r in done)), _FINAL_METRICS[0]
    )
    kinds = {r.objectives for r in done}  # one study, or several alike
    objectives = kinds.pop() if len(kinds) == 1 else ()
    second = SECOND_OBJECTIVES[objectives[1]] if len(objectives) > 1 else None
    minimize = lower_is_better(metric)
    table = top_trials(records, metric, minimize, second)
    frame, heading = table.frame, ""
    if second:
        front = frame[frame["pareto"] == ON_FRONT]
        words = " and ".join(
            f"{m} ({'lower' if low else 'higher'} is better)"
            for m, low in ((metric, minimize), (second, lower_is_better(second)))
        )
        heading = f"Pareto front: {len(front)} of {len(frame)} completed trials on {words}."
        frame = front
    columns = ["trial", *table.settings, metric, *table.tests, "epochs_run", "seconds", "run_id"]
    frame = frame[list(dict.fromkeys(columns + ([second] if second else [])))]
    frame.insert(0, "rank", range(1, len(frame) + 1))  # ranked already, by the rule
    if ensemble:
        total = sum(ensemble.values())
        weights = [ensemble.get(int(t), 0) / total for t in frame["trial"]]
        frame.insert(frame.columns.get_loc("run_id"), "ensemble_weight", weights)
    return (frame.head(top) if top else frame), heading, note


def export_text(
    runs: list[dict],
    metric: str | None = None,
    top: int | None = 10,
    fmt: str = "markdown",
    ensemble: dict[int, int] | None = None,
) -> str:
    """Best trial runs (as `tracking.Tracker.trial_runs` returns them) as markdown or CSV;
    with the study's `ensemble` (trial -> picks), each trial's weight in it."""
    check_format(fmt)
    frame, heading, note = export_frame(runs, metric, top, ensemble)
    if metric and not frame.empty and frame[metric].isna().all():
        raise UserError(f"no run has the metric {metric!r}")
    text = to_text(frame, fmt)
    if fmt == "markdown" and heading:
        text = f"{heading}\n\n{text}"
    if fmt == "markdown" and note:
        text += f"\n\nNot ranked: {note} trials."
    if fmt == "markdown" and ensemble:
        members = ", ".join(f"trial {t} ({p} pick{'s' * (p != 1)})" for t, p in ensemble.items())
        text += f"\n\nEnsemble: {members}; ensemble_weight is each trial's share of its picks."
    return text + "\n"


def check_format(fmt: str) -> None:
    if fmt not in ("markdown", "csv"):
        raise UserError(f"unknown format {fmt!r}; use markdown or csv")
