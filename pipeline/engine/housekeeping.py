"""Housekeeping of an Optuna storage: what studies it holds, and deleting one (`pipeline
studies`, `pipeline delete-study`), never while a search runs it (`study_activity`,
`refusal`). Plain data back, nothing printed; MLflow's side is
`tracking.Tracker.delete_study_runs`."""

from __future__ import annotations

import contextlib
import datetime
import socket
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import optuna
import sqlalchemy

from pipeline import locks, settings, tracking
from pipeline.engine import liveness, studies
from pipeline.errors import UserError

STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")  # the counts of a summary
# A RUNNING trial silent this long (seconds) is dead: its worker is gone. Longer than the
# grace of any sensible --heartbeat (three beats), as a parent run on another machine.
SILENT_AFTER = liveness.STALE_AFTER


def study_summaries(storage_url: str) -> list[dict[str, Any]]:
    """One summary per study of the storage, by name (see `summarize`); none for a SQLite
    file that does not exist (it is not created)."""
    storage = _existing(storage_url)
    if storage is None:
        return []
    with _damage_named(storage_url):
        names = sorted(optuna.get_all_study_names(storage))
        return [_summary(storage, name) for name in names]


def study_summary(storage_url: str, name: str) -> dict[str, Any]:
    """The summary of study `name`; a UserError when the storage has no such study."""
    storage = _existing(storage_url)
    with _damage_named(storage_url):
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


@contextlib.contextmanager
def _damage_named(storage_url: str) -> Iterator[None]:
    """A storage file damaged past its schema (met by a query, not when it opened) is one
    line naming it and the remedy."""
    try:
        yield
    except UserError:
        raise
    except Exception as error:
        if locks.sqlite_cause(error) is None:
            raise
        raise UserError(studies.storage_trouble(storage_url, error)) from None


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


# --- what of a study still runs -------------------------------------------------------------


@dataclass(frozen=True)
class Activity:
    """What of a study is RUNNING (`study_activity`): its parent runs whose invocation lives
    or is gone, its RUNNING trial runs, and its RUNNING trials with the seconds since each
    last beat (since it started, for one that never beat)."""

    live_parents: list[dict] = field(default_factory=list)
    dead_parents: list[dict] = field(default_factory=list)
    trial_runs: list[dict] = field(default_factory=list)
    trials: dict[int, float] = field(default_factory=dict)

    @property
    def live_trials(self) -> list[int]:
        return sorted(n for n, silent in self.trials.items() if silent <= SILENT_AFTER)

    @property
    def dead_trials(self) -> list[int]:
        return sorted(n for n, silent in self.trials.items() if silent > SILENT_AFTER)

    @property
    def live(self) -> bool:
        return bool(self.live_parents or self.live_trials)

    @property
    def leftovers(self) -> int:
        """The runs and trials left RUNNING by searches that are gone."""
        return len(self.dead_parents) + len(self.trial_runs) + len(self.dead_trials)


def study_activity(storage_url: str, tracker: tracking.Tracker, name: str) -> Activity:
    """What of study `name` is RUNNING, in its Optuna storage and in MLflow (`tracker`)."""
    storage = _existing(storage_url)
    if storage is None or name not in optuna.get_all_study_names(storage):
        raise _missing(storage_url, name)
    parents, trial_runs = liveness.running_runs(tracker, name)
    live = [r for r in parents if liveness.is_live(r["tags"])]
    dead = [r for r in parents if r not in live]
    return Activity(live, dead, trial_runs, _running_trials(storage, name))


def refusal(name: str, found: Activity, force: bool, tracking_uri: str) -> str | None:
    """Why study `name` may not be deleted now (None: it may): a search is running it, or
    trials still beat; or, without `force`, searches that are gone left it RUNNING runs or
    trials."""
    stop = "--force deletes dead leftovers only"
    if found.live_parents:
        who = "; ".join(_parent(r) for r in found.live_parents)
        trials = f"; {_numbers(found.live_trials)} running" if found.live_trials else ""
        searches = "that search" if len(found.live_parents) == 1 else "those searches"
        return (
            f"study {name!r} is being searched now ({who}{trials}): stop {searches} "
            f"(Ctrl-C, or {_kill(found.live_parents)}) and try again; {stop}"
        )
    if found.live_trials:
        newest = min(found.trials[n] for n in found.live_trials)
        them = "it" if len(found.live_trials) == 1 else "them"
        return (
            f"study {name!r} has {_numbers(found.live_trials)} running now (last heartbeat "
            f"{newest:.0f} s ago) but no live search in MLflow at {settings.mask(tracking_uri)}: "
            f"stop what runs {them} (a search logging to another tracking store, or workers "
            f"of a killed search) and try again; a trial silent for {SILENT_AFTER} s counts "
            f"as dead; {stop}"
        )
    if found.leftovers and not force:
        what = [_parent(r) for r in found.dead_parents]
        if found.dead_trials:
            what.append(_numbers(found.dead_trials))
        if found.trial_runs:
            n = len(found.trial_runs)
            what.append(f"{n} trial run{'' if n == 1 else 's'}")
        searches = "searches that are" if len(found.dead_parents) > 1 else "a search that is"
        return (
            f"study {name!r} has RUNNING leftovers of {searches} gone ({'; '.join(what)}): "
            "--force marks them KILLED and deletes the study"
        )
    return None


def kill_leftovers(tracker: tracking.Tracker, found: Activity) -> int:
    """Set KILLED the RUNNING runs that dead searches left (parents, trials), so that none
    stays RUNNING once deleted; returns how many. Only for a study without live activity."""
    assert not found.live
    runs = found.dead_parents + found.trial_runs
    for run in runs:
        tracker.fail(run["run_id"], "left RUNNING by a search that is gone", tracking.KILLED)
    return len(runs)


def _running_trials(storage: optuna.storages.BaseStorage, name: str) -> dict[int, float]:
    """Each RUNNING trial of study `name` by number, with the seconds since its last
    heartbeat, as the database's clock tells (since its start, for one that never beat)."""
    # private: Optuna has no public read of heartbeats (tests/test_library_internals.py)
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    study_id = storage.get_study_id_from_name(name)
    trial, beat = models.TrialModel, models.TrialHeartbeatModel
    with _create_scoped_session(storage.scoped_session) as session:
        now = session.execute(sqlalchemy.func.now()).scalar().replace(tzinfo=None)
        rows = (
            session.query(trial.number, beat.heartbeat, trial._datetime_start_utc)
            .outerjoin(beat)
            .filter(trial.study_id == study_id, trial.state == optuna.trial.TrialState.RUNNING)
            .all()
        )
    utc_now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)  # as Optuna writes
    silent = {}
    for number, heartbeat, start in rows:
        since = now - heartbeat if heartbeat else utc_now - start if start else None
        silent[number] = 0.0 if since is None else since.total_seconds()
    return silent


def _parent(run: dict) -> str:
    tags = run["tags"]
    where = [f"on host {tags[tracking.HOST]}"] if tracking.HOST in tags else []
    where += [f"pid {tags[tracking.PID]}"] if tracking.PID in tags else []
    return " ".join([f"parent run {run['run_id']}", ", ".join(where)]).strip()


def _kill(parents: list[dict]) -> str:
    """`kill PID ...` for the invocations of this machine, `kill PID on HOST` for others."""
    here = socket.gethostname()
    local = [r["tags"][tracking.PID] for r in parents if r["tags"].get(tracking.HOST) == here]
    kills = ["kill " + " ".join(local)] if local else []
    kills += [
        f"kill {r['tags'].get(tracking.PID)} on {r['tags'].get(tracking.HOST)}"
        for r in parents
        if r["tags"].get(tracking.HOST) != here
    ]
    return ", or ".join(kills)


def _numbers(numbers: list[int]) -> str:
    word = "trial" if len(numbers) == 1 else "trials"
    return f"{word} {', '.join(map(str, numbers))}"


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
