"""What a search prints at its end: the best trial against the recipe, the top few trials
with the settings that vary, and where to look next, in a terminal of about 110 columns.
The full table goes to the export and the parent run."""

from __future__ import annotations

import pandas as pd

from pipeline.engine.studies import recipe_trial
from pipeline.metrics import lower_is_better, ranking_key
from pipeline.params import layer_units

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
    import optuna

    trials = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not trials:
        return "(no completed trials)"
    metric = study.user_attrs.get("val_metric", "value")
    minimize = lower_is_better(metric)
    ranked = sorted(trials, key=lambda t: ranking_key(t.values[0], t.number, minimize))
    recipe = recipe_trial(trials)
    lines = _versus(ranked[0], recipe, metric)
    frame = _top_frame(ranked[:top], trials, metric)
    lines += ["", f"Top {len(frame)} by {metric} (the settings that vary):", _fit(frame, width)]
    return "\n".join(lines)


def _versus(best, recipe, metric: str) -> list[str]:
    test = _test_metric(best)
    rows = [("best", best)] + ([("recipe", recipe)] if recipe is not None else [])
    lines = [
        f"{label:<7}trial {t.number:<4} {metric} {t.values[0]:.4f}   "
        f"{test} {t.user_attrs.get(test, float('nan')):.4f}   best/run epochs {_epochs(t)}"
        for label, t in rows
    ]
    if recipe is not None and recipe.number != best.number and test in recipe.user_attrs:
        gain = best.user_attrs.get(test, float("nan")) - recipe.user_attrs[test]
        unit = "points" if "accuracy" in test else ""
        shown = f"{gain * 100:+.2f} points" if unit else f"{gain:+.3f}"
        lines.append(f"best - recipe on {test}: {shown}")
    elif recipe is not None:
        lines.append("the recipe is the best trial so far")
    return lines


def _top_frame(top: list, trials: list, metric: str) -> pd.DataFrame:
    varying = _varying(trials)
    rows = []
    for t in top:
        settings = _settings(t)
        test = _test_metric(t)
        rows.append(
            {"trial": t.number}
            | {SHORT.get(k, k): settings.get(k, "") for k in varying}
            | {metric: t.values[0], test: t.user_attrs.get(test), "best/run epochs": _epochs(t)}
        )
    return pd.DataFrame(rows)


def _settings(trial) -> dict:
    """A trial's params with units as one "16,32" value."""
    params = dict(trial.params)
    units = [params.pop(k) for k in sorted(params) if k.startswith("units_")]
    if units:
        params["units"] = ",".join(map(str, units[: params.get("n_layers", len(units))]))
    elif "units" in params:
        params["units"] = ",".join(map(str, layer_units(params)))
    return params


def _varying(trials: list) -> list[str]:
    values: dict[str, set] = {}
    for t in trials:
        for key, value in _settings(t).items():
            values.setdefault(key, set()).add(value)
    rank = {name: i for i, name in enumerate(PRIORITY)}
    return sorted((k for k in values if len(values[k]) > 1), key=lambda k: (rank.get(k, 99), k))


def _test_metric(trial) -> str:
    return next((k for k in ("test_accuracy", "test_mae") if k in trial.user_attrs), "test")


def _epochs(trial) -> str:
    """Best epoch / epochs run."""
    best, ran = trial.user_attrs.get("best_epoch"), trial.user_attrs.get("epochs_run")
    return f"{best}/{ran}" if best else str(ran)


def _fit(frame: pd.DataFrame, width: int) -> str:
    """The markdown table, dropping settings columns from the right until it fits."""
    fixed = {"trial", *frame.columns[-3:]}
    while True:
        text = frame.to_markdown(index=False, floatfmt=".4g")
        droppable = [c for c in frame.columns if c not in fixed]
        if len(text.splitlines()[0]) <= width or not droppable:
            return text
        frame = frame.drop(columns=droppable[-1])
