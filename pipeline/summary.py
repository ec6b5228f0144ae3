"""What a search prints at its end: the best trial against the recipe, the top few trials
with the settings that vary, and where to look next, in a terminal of about 110 columns.
The full table goes to the export and the parent run."""

from __future__ import annotations

import pandas as pd

from pipeline import report, tracking, trial_record
from pipeline.metrics import TASK_METRICS
from pipeline.spaces import CUSTOM
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
    recipe = next((r for r in done if r.enqueued == trial_record.RECIPE), None)
    lines = _versus(best, recipe, metric)
    own = any((r.representation or {}).get("family") == CUSTOM for r in records)
    frame = _top_frame(table, top, metric, _test_metric(best), short=not own)
    first, *more = _fit(frame, width)
    lines += ["", f"Top {len(frame)} by {metric} (the settings that vary):", first]
    for text in more:  # every setting that varies is shown, however many
        lines += ["", "More settings of the same trials:", text]
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


def _top_frame(
    table: report.TopTrials, top: int, metric: str, test: str, short: bool = True
) -> pd.DataFrame:
    """The first `top` rows of the top-trials table: the settings that vary (in the order
    they are kept; short names unless `short` is off: a custom model's keys are the user's),
    the metric, one test figure and the epochs."""
    rank = {name: i for i, name in enumerate(PRIORITY)}
    varying = sorted(table.settings, key=lambda k: (rank.get(k, 99), k))
    rows = [
        {"trial": row["trial"]}
        | {(SHORT.get(k, k) if short else k): "" if row[k] is None else row[k] for k in varying}
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


def _fit(frame: pd.DataFrame, width: int) -> list[str]:
    """The markdown table in `width` columns: the first table holds the trial, the settings
    that fit beside its figures, and the figures; each further one the trial and the next
    settings that fit (a single setting wider than `width` gets a table of its own)."""
    figures = list(frame.columns[-3:])
    settings = [c for c in frame.columns if c not in ("trial", *figures)]
    tables, first = [], True
    while first or settings:
        fixed = figures if first else []
        take = len(settings)
        while take > (0 if first else 1) and _width(frame, settings[:take], fixed) > width:
            take -= 1
        tables.append(_markdown(frame[["trial", *settings[:take], *fixed]]))
        settings, first = settings[take:], False
    return tables


def _width(frame: pd.DataFrame, settings: list[str], fixed: list[str]) -> int:
    return len(_markdown(frame[["trial", *settings, *fixed]]).splitlines()[0])


def _markdown(frame: pd.DataFrame) -> str:
    return frame.to_markdown(index=False, floatfmt=".4g")


def nothing_finished(study) -> str | None:
    """One line when no trial of the study finished (every one failed), naming the first
    failure's error; None when a trial finished."""
    records = trial_record.study_records(study)
    if any(r.state in (tracking.COMPLETE, tracking.PRUNED) for r in records):
        return None
    failed = [r for r in records if r.state == tracking.FAIL]
    if not failed:
        return "no trial finished"
    first = min(failed, key=lambda r: r.number)
    why = " ".join(str(first.error or "no error recorded").split())
    return f"no trial finished: {len(failed)} failed; trial {first.number}: {why}"


def closing_text(outcome) -> str:
    """What a search prints at its end, in a terminal and in a notebook: the trials run,
    the summary, and where to look next. `outcome`: the engine's `Outcome`."""
    plan = outcome.plan
    records = trial_record.study_records(outcome.study)
    done = sum(r.state in (tracking.COMPLETE, tracking.PRUNED) for r in records)
    lines = [f"\nstudy {plan.study!r}: ran {outcome.ran} trials now, {done} finished in all"]
    lines.append(summary_text(outcome.study))
    if outcome.ensemble is not None:
        lines += ["", ensemble_text(outcome.ensemble)]
    name = plan.dataset.name
    study_option = "" if plan.study == name else f" --study {plan.study!r}"
    lines.append(f"\nEvery trial: pipeline export {name!r}{study_option}")
    example = "--file rows.csv" if plan.dataset.is_table else '"a text"'
    if outcome.model_uri:
        lines.append(f"Best model: {outcome.model_uri}; pipeline predict {plan.study!r} {example}")
    if outcome.ensemble is not None and outcome.ensemble.model_uri:
        lines.append(f"Ensemble model: {outcome.ensemble.model_uri}")
    if outcome.experiment_id:
        lines += ui_lines(plan.stores.tracking, outcome.experiment_id, outcome.study)
    return "\n".join(lines)


def ui_lines(tracking_uri: str, experiment_id: str, study) -> list[str]:
    """Where to look in the MLflow UI: the trials, best first, and a comparison of the top
    ten's parameters against the metric."""
    base = tracking.ui_base(tracking_uri)
    start = "make ui, then " if base == tracking.LOCAL_UI else ""
    lines = [f"MLflow UI: {start}{tracking.runs_page(base, experiment_id)}"]
    metric, *second = trial_record.value_names(study)
    records = trial_record.study_records(study)
    table = report.top_trials(records, metric, trial_record.minimizes(study), *second)
    top = [r for r in table.frame.get("run_id", pd.Series(dtype=object))[:10] if r]
    if len(top) > 1:
        page = tracking.compare_page(base, experiment_id, top)
        lines.append(f"Compare the top {len(top)}: {page}")
    return lines


def ensemble_text(ensemble) -> str:
    """The best trial and the ensemble chosen from the kept trials, side by side
    (`ensemble`: the engine's `Ensemble`), and whether the ensemble was registered."""
    metric, test = ensemble.metric, ensemble.metric.replace("val_", "test_", 1)
    listed = [f"{trial}×{picks}" for trial, picks in ensemble.members.items()]
    members = ", ".join(listed[:6]) + (f", +{len(listed) - 6} more" if len(listed) > 6 else "")
    rows = [
        {
            "model": f"best trial {ensemble.best_trial}",
            metric: ensemble.best_val,
            "held out": ensemble.best_held_out,
            test: ensemble.best_test,
            "trials": 1,
            "members (trial×picks)": str(ensemble.best_trial),
        },
        {
            "model": "ensemble",
            metric: ensemble.val,
            "held out": ensemble.held_out,
            test: ensemble.test,
            "trials": len(ensemble.members),
            "members (trial×picks)": members,
        },
    ]
    lines = [
        f"Ensemble of the {ensemble.candidates} kept trials ({ensemble.size} greedy picks). "
        "Held out: each half of the",
        "validation rows scored by what the other half chose (the best trial, or the weights).",
        pd.DataFrame(rows).to_markdown(index=False, floatfmt=".4f"),
    ]
    if ensemble.model_uri:
        lines.append(f"Held out, the ensemble wins: registered as {ensemble.model_uri}.")
    elif ensemble.better:
        lines.append("Held out, the ensemble wins, but it was not registered (see the log).")
    else:
        lines.append("Held out, the ensemble does not beat the best trial: not registered.")
    return "\n".join(lines)
