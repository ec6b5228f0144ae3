"""Housekeeping of an Optuna storage: what studies it holds, and deleting one (`pipeline
studies`, `pipeline delete-study`). Plain data back, nothing printed; MLflow's side is
`tracking.Tracker.delete_study_runs`."""

from __future__ import annotations

from collections import Counter
from typing import Any

import optuna

from pipeline import settings
from pipeline.engine import studies
from pipeline.errors import UserError

STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")  # the counts of a summary


def study_summaries(storage_url: str) -> list[dict[str, Any]]:
    """One summary per study of the storage, by name (see `summarize`); none for a SQLite
    file that does not exist (it is not created)."""
    storage = _existing(storage_url)
    if storage is None:
        return []
    return [_summary(storage, name) for name in sorted(optuna.get_all_study_names(storage))]


def study_summary(storage_url: str, name: str) -> dict[str, Any]:
    """The summary of study `name`; a UserError when the storage has no such study."""
    storage = _existing(storage_url)
    if storage is None or name not in optuna.get_all_study_names(storage):
        raise _missing(storage_url, name)
    return _summary(storage, name)


def delete_study(storage_url: str, name: str) -> None:
    """Delete study `name` and its trials from the storage (Optuna's own delete)."""
    storage = _existing(storage_url)
    if storage is None:
        raise _missing(storage_url, name)
    try:
        optuna.delete_study(study_name=name, storage=storage)
    except KeyError:
        raise _missing(storage_url, name) from None


def summarize(study: optuna.Study) -> dict[str, Any]:
    """study, directions, trials and the count of each state in `STATES`, best_trial and
    best (its value; its values with two objectives: the Pareto trial best on the first;
    None without a completed trial), last_activity (the latest start or end of a trial,
    ISO 8601 to the second, local time as Optuna stores it; None without trials)."""
    trials = study.get_trials(deepcopy=False)
    counts = Counter(t.state.name for t in trials)
    best = studies.best_trial(study)
    values = None if best is None else best.values if studies.is_multi(study) else best.value
    times = [d for t in trials for d in (t.datetime_start, t.datetime_complete) if d]
    last = max(times).isoformat(sep=" ", timespec="seconds") if times else None
    return {
        "study": study.study_name,
        "directions": [d.name.lower() for d in study.directions],
        "trials": len(trials),
        **{state: counts.get(state, 0) for state in STATES},
        "best_trial": None if best is None else best.number,
        "best": values,
        "last_activity": last,
    }


def _summary(storage: optuna.storages.BaseStorage, name: str) -> dict[str, Any]:
    # a sampler that costs nothing to build: the study is only read
    sampler = optuna.samplers.RandomSampler()
    return summarize(optuna.load_study(study_name=name, storage=storage, sampler=sampler))


def _existing(storage_url: str) -> optuna.storages.BaseStorage | None:
    """The storage, opened; None for a SQLite file that is not there (reading a storage
    should not create one)."""
    database = settings.sqlite_path(storage_url)
    if database is not None and not database.exists():
        return None
    return studies.open_storage(storage_url)


def _missing(storage_url: str, name: str) -> UserError:
    return UserError(
        f"no study {name!r} in {settings.mask(storage_url)} (pipeline studies lists them)"
    )
