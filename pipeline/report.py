"""Tables for people: best trials of a study, as pandas frames rendered to markdown or CSV."""

from __future__ import annotations

import pandas as pd


def trials_frame(study, top: int | None = None) -> pd.DataFrame:
    """Completed trials, best first: number, params, validation and test figures, seconds."""
    import optuna

    metric = study.user_attrs.get("val_metric", "value")
    trials = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not trials:
        return pd.DataFrame()
    params = sorted({name for t in trials for name in t.params})
    tests = sorted({k for t in trials for k in t.user_attrs if k.startswith("test_")})
    columns = ["trial", *params, metric, *tests, "epochs_run", "seconds"]
    rows = [{"trial": t.number, **t.params, metric: t.value, **t.user_attrs} for t in trials]
    frame = pd.DataFrame(rows).reindex(columns=columns)
    ascending = study.direction == optuna.study.StudyDirection.MINIMIZE
    frame = frame.sort_values(metric, ascending=ascending, kind="stable")
    return frame.head(top) if top else frame


def to_text(frame: pd.DataFrame, fmt: str = "markdown") -> str:
    if frame.empty:
        return "(no finished trials)"
    if fmt == "csv":
        return frame.to_csv(index=False)
    return frame.to_markdown(index=False, floatfmt=".4g", missingval="")
