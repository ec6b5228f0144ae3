"""Tables for people: best trials of a study, as pandas frames rendered to markdown or CSV."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from pipeline import tables, tracking
from pipeline.errors import UserError
from pipeline.metrics import SECOND_OBJECTIVES, lower_is_better, ranking_key
from pipeline.params import layer_units


def trials_frame(study, top: int | None = None) -> pd.DataFrame:
    """Completed trials, best first: number, params, validation and test figures, seconds.
    With two objectives: both, and whether the trial is on the Pareto front."""
    import optuna

    metric = study.user_attrs.get("val_metric", "value")
    trials = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not trials:
        return pd.DataFrame()
    params = sorted({name for t in trials for name in t.params})
    tests = sorted({k for t in trials for k in t.user_attrs if k.startswith("test_")})
    second = _second_objective(study)
    extra = [second, "pareto"] if second else []
    columns = ["trial", *params, metric, *extra, *tests, "epochs_run", "seconds"]
    front = {t.number for t in study.best_trials} if second else set()
    rows = [
        {"trial": t.number, **t.params, **t.user_attrs, metric: t.values[0]}
        | ({second: t.values[1], "pareto": "✓" if t.number in front else ""} if second else {})
        for t in trials
    ]
    minimize = study.directions[0] == optuna.study.StudyDirection.MINIMIZE
    rows.sort(key=lambda row: ranking_key(row[metric], row["trial"], minimize))
    frame = pd.DataFrame(rows).reindex(columns=columns)
    return frame.head(top) if top else frame


def _second_objective(study) -> str | None:
    objectives = study.user_attrs.get("objectives", [])
    return SECOND_OBJECTIVES[objectives[1]] if len(objectives) > 1 else None


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


def _value(result: dict, split: str, name: str) -> float:
    return result[f"final_val_{name}" if split == "val" else f"test_{name}"]


def _classification_row(row, results: list[dict]) -> dict[str, Any]:
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


def _regression_row(row, results: list[dict]) -> dict[str, Any]:
    mae = [r["final_val_mae"] for r in results]
    k = len(row.reported.get("folds", []))
    folds = (
        [
            float(np.mean([r.get(f"fold_{i}_val_mae", np.nan) for r in results]))
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
        "our test MAE": _mean_std([r["test_mae"] for r in results], digits=2),
    }


def reproduction_frame(table, results: dict[int, list[dict]]) -> pd.DataFrame:
    """One line per seed row: its settings, the seed's numbers, ours (mean ± std), run ids."""
    lines = []
    for row in table.rows:
        got = results.get(row.index, [])
        reg = "mae" in row.reported
        values = _regression_row(row, got) if reg else _classification_row(row, got)
        runs = ", ".join(r.get("mlflow_run_id", "")[:8] for r in got)
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


def _row_means(results: dict[int, list[dict]]) -> dict[int, dict[str, float]]:
    means = {}
    for index, got in results.items():
        keys = {k for r in got for k in r if isinstance(r[k], int | float)}
        means[index] = {
            k.removeprefix("final_"): float(np.mean([r[k] for r in got if k in r])) for k in keys
        }
    return means


def conclusion_lines(table, results: dict[int, list[dict]]) -> list[str]:
    means = _row_means(results)
    lines = []
    for c in table.conclusions:
        needed = set(c.rows) | set(c.than)
        if not needed <= set(means):
            lines.append(f"- [ ] {c.claim}: not checked yet (rows missing)")
            continue
        verdict = "confirmed" if tables.holds(c, means) else "NOT confirmed"
        lines.append(
            f"- [{'x' if verdict == 'confirmed' else ' '}] {c.claim}: {verdict} by our {c.metric}"
        )
    return lines


def reproduction_text(table, results: dict[int, list[dict]], baseline: float | None) -> str:
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

_NOT_COMPARED = {"seed", "timeout"}


def _varying(runs: list[dict]) -> list[str]:
    names = sorted({k for r in runs for k in r["params"]} - _NOT_COMPARED)
    names = [n for n in names if not (n.startswith("units_") and "units" in names)]
    return [n for n in names if len({r["params"].get(n) for r in runs}) > 1]


def pareto_front(values: np.ndarray) -> np.ndarray:
    """Which rows no other row dominates (every column minimized)."""
    better_or_equal = (values[None, :, :] <= values[:, None, :]).all(axis=2)
    strictly_better = (values[None, :, :] < values[:, None, :]).any(axis=2)
    return ~(better_or_equal & strictly_better).any(axis=1)


def _front_only(frame: pd.DataFrame, objectives: list[str]) -> tuple[pd.DataFrame, str]:
    """The Pareto front of a two-objective study's runs, and a line saying so."""
    signs = np.array([1 if lower_is_better(m) else -1 for m in objectives])
    values = frame[objectives].to_numpy(dtype=float) * signs
    front = frame[pareto_front(values)]
    words = " and ".join(
        f"{m} ({'lower' if s > 0 else 'higher'} is better)"
        for m, s in zip(objectives, signs, strict=True)
    )
    return front, f"Pareto front: {len(front)} of {len(frame)} completed trials on {words}."


def export_frame(
    runs: list[dict], metric: str | None = None, top: int | None = None
) -> tuple[pd.DataFrame, str, str]:
    """Ranked completed trial runs, a heading, and a note on the failed and pruned runs
    left out. A two-objective study's export is its Pareto front, ranked by the first
    objective, under a heading that says so."""
    done = [
        r
        for r in runs
        if r["tags"].get(tracking.TRIAL_STATE) == "COMPLETE" and r["status"] == tracking.FINISHED
    ]
    left_out = pd.Series(
        [r["tags"].get(tracking.TRIAL_STATE, r["status"]) for r in runs if r not in done]
    ).value_counts()
    words = {"FAIL": "failed", "PRUNED": "pruned"}
    note = ", ".join(f"{n} {words.get(state, state.lower())}" for state, n in left_out.items())
    if not done:
        return pd.DataFrame(), "", note
    metric = metric or next(
        m for m in ("final_val_accuracy", "final_val_mae") if any(m in r["metrics"] for r in done)
    )
    minimize = lower_is_better(metric)
    done.sort(key=lambda r: ranking_key(r["metrics"].get(metric), _trial_number(r), minimize))
    tests = sorted({k for r in done for k in r["metrics"] if k.startswith("test_")})
    varying = _varying(runs)  # over every run of the study, failed and pruned too
    rows = [
        {
            **{p: r["params"].get(p) for p in varying},
            metric: r["metrics"].get(metric),
            **{t: r["metrics"].get(t) for t in tests if t != metric},
            "epochs_run": r["metrics"].get("epochs_run"),
            "seconds": r["metrics"].get("train_seconds"),
            "run_id": r["run_id"],
        }
        for r in done
    ]
    kinds = {r["tags"].get(tracking.OBJECTIVES, "") for r in done}  # one study, or several alike
    objectives = kinds.pop().split(",") if len(kinds) == 1 else []
    heading = ""
    if len(objectives) > 1:
        second = SECOND_OBJECTIVES[objectives[1]]
        for row, run in zip(rows, done, strict=True):
            row[second] = run["metrics"].get(second)
        frame, heading = _front_only(pd.DataFrame(rows), [metric, second])
    else:
        frame = pd.DataFrame(rows)  # ranked already: `done` is in the order of the rule
    frame.insert(0, "rank", range(1, len(frame) + 1))
    return (frame.head(top) if top else frame), heading, note


def _trial_number(run: dict) -> int | None:
    number = run["tags"].get(tracking.TRIAL_NUMBER)
    return int(number) if number is not None and number.isdigit() else None


def export_text(
    runs: list[dict], metric: str | None = None, top: int | None = 10, fmt: str = "markdown"
) -> str:
    """Best trial runs (as `tracking.Tracker.trial_runs` returns them) as markdown or CSV."""
    check_format(fmt)
    frame, heading, note = export_frame(runs, metric, top)
    if metric and not frame.empty and frame[metric].isna().all():
        raise UserError(f"no run has the metric {metric!r}")
    text = to_text(frame, fmt)
    if fmt == "markdown" and heading:
        text = f"{heading}\n\n{text}"
    if fmt == "markdown" and note:
        text += f"\n\nNot ranked: {note} trials."
    return text + "\n"


def check_format(fmt: str) -> None:
    if fmt not in ("markdown", "csv"):
        raise UserError(f"unknown format {fmt!r}; use markdown or csv")
