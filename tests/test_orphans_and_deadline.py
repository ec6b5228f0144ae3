"""Every trial accounted for: a trial killed before its first heartbeat is failed and tried
again; and one deadline per invocation, shared by its workers and its leftover trials."""

from __future__ import annotations

import datetime
import logging
import socket
import sqlite3
import subprocess
import time

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from pipeline import engine, tracking
from pipeline.engine import planner, runner, studies
from tests.conftest import TINY_SPACE, space_file

QUICK_SPACE = {**TINY_SPACE, "defaults": {**TINY_SPACE["defaults"], "epochs": 1}}


def dead_pid() -> int:
    """The id of a process that has ended."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def plan_of(tmp_path, n_trials: int, **options):
    options = {"pruner": "none", "n_trials": n_trials} | options
    return planner.search_plan(
        engine.SearchJob(dataset="imdb", space=space_file(tmp_path), **options)
    )


def test_a_trial_killed_before_its_first_heartbeat_is_failed_and_tried_again(
    tiny_data, stores, tmp_path
):
    """The state a SIGKILL between Optuna creating trial 0 and its first beat leaves: a
    RUNNING trial with no heartbeat and no MLflow run, under a parent run whose process is
    gone. The next invocation on this host fails it and trains its params again."""
    plan = plan_of(tmp_path, 3)
    study = studies.open_study(plan)
    studies.enqueue(study, plan.trials.known)  # the recipe, as the killed invocation did
    orphan = study.ask()  # RUNNING, holding the recipe's enqueued params; never beat
    recipe = study.trials[orphan.number].system_attrs["fixed_params"]
    tracker = tracking.Tracker(stores["tracking"])
    experiment_id = tracker.experiment("imdb")
    dead_tags = plan.tags | {tracking.KIND: "search", tracking.HOST: socket.gethostname()}
    dead_tags |= {tracking.PID: dead_pid(), tracking.ALIVE_AT: int(time.time())}
    dead_parent = tracker.start_run(experiment_id, "killed-search", tags=dead_tags)

    outcome = runner.run(plan_of(tmp_path, 3))

    trials = outcome.study.trials
    assert trials[orphan.number].state == TrialState.FAIL
    retried = [t for t in trials if t.system_attrs.get("failed_trial") == orphan.number]
    assert len(retried) == 1 and retried[0].state == TrialState.COMPLETE
    assert recipe.items() <= retried[0].params.items()  # the recipe's searched values
    assert retried[0].user_attrs[tracking.ENQUEUED] == studies.RECIPE  # trained as the recipe
    assert [t.state for t in trials].count(TrialState.COMPLETE) == 3
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    client = MlflowClient(tracking_uri=stores["tracking"])
    assert client.get_run(dead_parent).info.status == "KILLED"


def test_a_trial_that_never_beat_is_stale_after_the_grace_period(tiny_data, stores, tmp_path):
    """Elsewhere (another live invocation, another host), a RUNNING trial with no heartbeat
    older than the grace period is just as dead; a young one, or one that beats, is not."""
    plan = plan_of(tmp_path, 3, heartbeat=2)  # grace period: 6 s
    study = studies.open_study(plan)
    old, young, beating = (study.ask() for _ in range(3))
    study._storage.record_heartbeat(beating._trial_id)
    an_hour_ago = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    an_hour_ago -= datetime.timedelta(hours=1)
    database = stores["storage"].removeprefix("sqlite:///")
    with sqlite3.connect(database) as connection:
        for trial in (old, beating):
            connection.execute(
                "UPDATE trials SET datetime_start = ? WHERE trial_id = ?",
                (an_hour_ago.isoformat(sep=" "), trial._trial_id),
            )
    running = studies.fail_stale_trials(study)
    assert running == {young.number, beating.number}
    assert study.trials[old.number].state == TrialState.FAIL
    retries = [t for t in study.trials if t.system_attrs.get("failed_trial") == old.number]
    assert [t.state for t in retries] == [TrialState.WAITING]  # queued again


@pytest.mark.slow
def test_no_trial_starts_after_the_deadline_with_two_workers(tiny_data, stores, tmp_path, caplog):
    """Workers start seconds after the command (spawning, importing TensorFlow); the
    deadline still counts from the command's start, and the parent runs no leftovers."""
    plan = planner.search_plan(
        engine.SearchJob(
            dataset="imdb",
            space=space_file(tmp_path, QUICK_SPACE),
            n_trials=200,
            timeout=45,
            workers=2,
        )
    )
    with caplog.at_level(logging.WARNING, logger="pipeline"):
        outcome = runner.run(plan)
    # (45 s: under a parallel test run, spawning both workers took more than 25 s; a
    # trial queued but never started has no start)
    started = [t for t in outcome.study.trials if t.datetime_start is not None]
    starts = [t.datetime_start.timestamp() for t in started]
    assert starts and max(starts) <= plan.deadline + 0.5, max(starts) - plan.deadline
    assert len(starts) < 200
    assert "running them here" not in caplog.text and "unfinished" not in caplog.text
    assert optuna.load_study(study_name="imdb", storage=stores["storage"]).trials[-1].state in (
        TrialState.COMPLETE,
        TrialState.PRUNED,
        TrialState.FAIL,
    )
