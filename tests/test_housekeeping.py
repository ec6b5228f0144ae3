"""`pipeline studies` and `pipeline delete-study` through the real CLI, on SQLite and on
PostgreSQL; the studies and runs are made with Optuna and MlflowClient directly (no
training)."""

from __future__ import annotations

import datetime as dt
import json
import re
import socket
import subprocess
import time
import uuid

import optuna
import pytest
import sqlalchemy
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState, create_trial
from typer.testing import CliRunner

from pipeline import tracking
from pipeline.cli import app
from pipeline.settings import mask
from tests.test_faults import SLOW_SPACE, cli, running_trial_run, search_args

S = TrialState
T0 = dt.datetime(2024, 5, 1, 12, 0, 0)
X = {"x": optuna.distributions.FloatDistribution(0, 1)}
ALPHA_RUNS = 6  # active runs tagged study=alpha, in two experiments (see `make_runs`)


def trial(state: TrialState, value=None, start: int = 0, end: int | None = None):
    """A trial started `start` minutes after T0 and finished `end` minutes after it."""
    values = value if isinstance(value, list) else None
    single = None if values else value
    made = create_trial(
        state=state, value=single, values=values, params={"x": 0.5}, distributions=X
    )
    made.datetime_start = None if state == S.WAITING else T0 + dt.timedelta(minutes=start)
    made.datetime_complete = None if end is None else T0 + dt.timedelta(minutes=end)
    return made


def make_studies(storage: str) -> None:
    """alpha: every state, best 0.8 (trial 1), last activity the RUNNING trial's start;
    beta: two objectives, Pareto front trials 0 and 1; empty: no trials."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    alpha = optuna.create_study(study_name="alpha", storage=storage, direction="maximize")
    for made in (
        trial(S.COMPLETE, 0.5, 0, 1),
        trial(S.COMPLETE, 0.8, 2, 3),
        trial(S.COMPLETE, 0.7, 4, 20),
        trial(S.PRUNED, None, 5, 6),
        trial(S.FAIL, None, 7, 8),
        trial(S.FAIL, None, 9, 10),
        trial(S.RUNNING, None, 30),
        trial(S.WAITING),
    ):
        alpha.add_trial(made)
    beta = optuna.create_study(
        study_name="beta", storage=storage, directions=["maximize", "minimize"]
    )
    for made in (
        trial(S.COMPLETE, [0.9, 300.0], 0, 1),
        trial(S.COMPLETE, [0.8, 100.0], 2, 3),
        trial(S.COMPLETE, [0.7, 200.0], 2 * 24 * 60, 2 * 24 * 60 + 5),
    ):
        beta.add_trial(made)
    optuna.create_study(study_name="empty", storage=storage, direction="minimize")


def make_runs(uri: str) -> dict[str, list[str]]:
    """alpha's runs: two invocations in two experiments, four trials; and, left alone: beta's
    runs, a train run, a run of study alpha-2 and one of alpha's already deleted."""
    client = MlflowClient(tracking_uri=uri)
    imdb, reuters = (client.create_experiment(name) for name in ("imdb", "reuters"))
    made: dict[str, list[str]] = {"alpha": [], "others": []}

    def run(experiment, group, study=None, parent=None, number=None) -> str:
        tags = {} if study is None else {tracking.STUDY: study}
        tags |= {tracking.KIND: "search" if study else "train"}
        if parent:
            tags |= {tracking.PARENT_RUN_ID: parent, tracking.TRIAL_NUMBER: str(number)}
        run_id = client.create_run(experiment, tags=tags).info.run_id
        made[group].append(run_id)
        return run_id

    first = run(imdb, "alpha", "alpha")
    for number in range(3):
        run(imdb, "alpha", "alpha", first, number)
    second = run(reuters, "alpha", "alpha")
    run(reuters, "alpha", "alpha", second, 3)
    beta = run(imdb, "others", "beta")
    run(imdb, "others", "beta", beta, 0)
    run(imdb, "others")  # `pipeline train`: no study
    run(reuters, "others", "alpha-2")
    gone = client.create_run(imdb, tags={tracking.STUDY: "alpha"}).info.run_id
    client.delete_run(gone)
    assert len(made["alpha"]) == ALPHA_RUNS
    return made


def stages(uri: str, run_ids: list[str]) -> set[str]:
    client = MlflowClient(tracking_uri=uri)
    return {client.get_run(run_id).info.lifecycle_stage for run_id in run_ids}


def statuses(uri: str, run_ids: list[str]) -> set[str]:
    client = MlflowClient(tracking_uri=uri)
    return {client.get_run(run_id).info.status for run_id in run_ids}


def database(postgres_url: str) -> str:
    """A fresh database on the session's PostgreSQL server."""
    import sqlalchemy

    name = f"t_{uuid.uuid4().hex[:12]}"
    engine = sqlalchemy.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return postgres_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(params=["sqlite", "postgres"])
def both(request, stores, monkeypatch) -> dict[str, str]:
    """Optuna and MLflow stores, both SQLite or both PostgreSQL, set as the defaults."""
    if request.param == "sqlite":
        return stores
    server = request.getfixturevalue("postgres_url")
    uris = {"storage": database(server), "tracking": database(server)}
    monkeypatch.setenv("PIPELINE_STORAGE", uris["storage"])
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uris["tracking"])
    return uris


@pytest.fixture(params=["sqlite", "postgres"])
def storage(request, stores) -> str:
    """An Optuna storage on SQLite or PostgreSQL, set as the default (MLflow: SQLite)."""
    return stores["storage"] if request.param == "sqlite" else request.getfixturevalue("pg_storage")


def invoke(*args: str, answer: str | None = None):
    return CliRunner().invoke(app, list(args), input=answer)


# --- pipeline studies -----------------------------------------------------------------------

ALPHA = {
    "study": "alpha",
    "directions": ["maximize"],
    "trials": 8,
    "COMPLETE": 3,
    "PRUNED": 1,
    "FAIL": 2,
    "RUNNING": 1,
    "WAITING": 1,
    "best_trial": 1,
    "best": 0.8,
    "last_activity": "2024-05-01 12:30:00",  # the RUNNING trial's start
}
BETA = {
    "study": "beta",
    "directions": ["maximize", "minimize"],
    "trials": 3,
    "COMPLETE": 3,
    "PRUNED": 0,
    "FAIL": 0,
    "RUNNING": 0,
    "WAITING": 0,
    "best_trial": 0,
    "best": [0.9, 300.0],  # the Pareto trial best on the first objective
    "last_activity": "2024-05-03 12:05:00",
}
EMPTY = {
    "study": "empty",
    "directions": ["minimize"],
    "trials": 0,
    **dict.fromkeys(("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING"), 0),
    "best_trial": None,
    "best": None,
    "last_activity": None,
}


def test_studies_json_counts_best_and_last_activity(storage):
    make_studies(storage)
    result = invoke("studies", "--json")  # the storage of PIPELINE_STORAGE
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [ALPHA, BETA, EMPTY]


def test_studies_markdown_table(storage, monkeypatch):
    make_studies(storage)
    monkeypatch.setenv("PIPELINE_STORAGE", "sqlite:///elsewhere.db")  # --storage wins
    result = invoke("studies", "--storage", storage)
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    assert cells[0] == list(ALPHA)
    assert len(lines) == 5  # header, rule, three studies
    assert cells[2] == ["alpha", "maximize", "8", "3", "1", "2", "1", "1", "1", "0.8"] + [
        "2024-05-01 12:30:00"
    ]
    assert cells[3][1] == "maximize, minimize" and cells[3][-3:-1] == ["0", "0.9, 300"]
    assert cells[4] == ["empty", "minimize", "0", "0", "0", "0", "0", "0", "", "", ""]


def test_studies_of_an_empty_storage(storage, tmp_path):
    result = invoke("studies", "--storage", storage)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"no studies in {mask(storage)}\n"
    assert "s3cret-pw" not in result.output  # the PostgreSQL password is masked
    assert json.loads(invoke("studies", "--json", "--storage", storage).stdout) == []
    missing = tmp_path / "none" / "optuna.db"
    result = invoke("studies", "--storage", f"sqlite:///{missing}")
    assert result.stdout == f"no studies in sqlite:///{missing}\n"
    assert not missing.parent.exists()  # listing creates nothing


# --- pipeline delete-study ------------------------------------------------------------------


def test_delete_study_with_yes(both):
    """alpha's runs and its RUNNING trial are leftovers of searches that are gone (no
    `alive_at`, a trial silent since 2024): --force sets the runs KILLED, then deletes."""
    make_studies(both["storage"])
    runs = make_runs(both["tracking"])
    result = invoke("delete-study", "alpha", "--yes", "--force")  # the stores of the environment
    assert result.exit_code == 0, result.output
    tracking_uri = mask(both["tracking"])
    killed = f"({ALPHA_RUNS} left RUNNING set KILLED first)"
    assert result.stdout.splitlines() == [
        f"deleted study 'alpha' (8 trials) from {mask(both['storage'])}",
        f"marked {ALPHA_RUNS} MLflow runs deleted {killed}; to purge every deleted run:",
        f"  mlflow gc --backend-store-uri {tracking_uri} --tracking-uri {tracking_uri}",
    ]
    assert stages(both["tracking"], runs["alpha"]) == {"deleted"}
    assert statuses(both["tracking"], runs["alpha"]) == {"KILLED"}
    assert stages(both["tracking"], runs["others"]) == {"active"}
    assert optuna.get_all_study_names(both["storage"]) == ["beta", "empty"]
    beta = optuna.load_study(study_name="beta", storage=both["storage"])
    assert len(beta.trials) == 3
    listed = json.loads(invoke("studies", "--json").stdout)
    assert [row["study"] for row in listed] == ["beta", "empty"]


def test_delete_study_asks_first(storage, stores):
    make_studies(storage)
    runs = make_runs(stores["tracking"])
    args = ("delete-study", "alpha", "--force", "--storage", storage)
    args += ("--tracking-uri", stores["tracking"])
    question = (
        f"Delete study 'alpha' (8 trials, 1 of them RUNNING) from {mask(storage)} and mark its "
        f"{ALPHA_RUNS} MLflow runs deleted ({ALPHA_RUNS} left RUNNING set KILLED first) in "
        f"{stores['tracking']}? [y/N]: "
    )
    for answer in ("n\n", "\n", ""):  # no, the default, stdin closed
        result = invoke(*args, answer=answer)
        assert result.exit_code == 1, result.output
        assert result.stdout.startswith(question)
        assert result.stderr == "nothing deleted\n"
        assert stages(stores["tracking"], runs["alpha"]) == {"active"}
        assert statuses(stores["tracking"], runs["alpha"]) == {"RUNNING"}  # none KILLED
        assert optuna.get_all_study_names(storage) == ["alpha", "beta", "empty"]
    result = invoke(*args, answer="y\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(
        question + f"y\ndeleted study 'alpha' (8 trials) from {mask(storage)}\n"
    )
    assert stages(stores["tracking"], runs["alpha"]) == {"deleted"}
    assert statuses(stores["tracking"], runs["alpha"]) == {"KILLED"}
    assert stages(stores["tracking"], runs["others"]) == {"active"}
    assert optuna.get_all_study_names(storage) == ["beta", "empty"]


def test_delete_a_study_without_runs(storage, stores):
    make_studies(storage)
    runs = make_runs(stores["tracking"])
    result = invoke("delete-study", "empty", "--yes")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[:2] == [
        f"deleted study 'empty' (0 trials) from {mask(storage)}",
        "marked 0 MLflow runs deleted; to purge every deleted run:",
    ]
    assert stages(stores["tracking"], runs["alpha"] + runs["others"]) == {"active"}
    assert optuna.get_all_study_names(storage) == ["alpha", "beta"]


def test_delete_a_missing_study(storage, stores):
    make_studies(storage)
    runs = make_runs(stores["tracking"])
    for name in ("nope", "alpha-2"):  # alpha-2 has a run in MLflow, no study in Optuna
        result = invoke("delete-study", name, "--yes")
        assert result.exit_code == 2, result.output
        line = f"error: no study {name!r} in {mask(storage)} (pipeline studies lists them)\n"
        assert result.stderr == line
        assert result.stdout == ""
    assert "s3cret-pw" not in result.output
    assert stages(stores["tracking"], runs["alpha"] + runs["others"]) == {"active"}
    assert optuna.get_all_study_names(storage) == ["alpha", "beta", "empty"]


# --- a study with live activity, or with leftovers of dead searches -------------------------

STOP = "--force deletes dead leftovers only"


@pytest.mark.slow
def test_delete_study_refuses_a_study_being_searched(tiny_data, stores, tmp_path, monkeypatch):
    """A search running: delete-study is refused, --force too, and changes nothing; the
    search then ends normally, with nothing left RUNNING."""
    monkeypatch.setitem(SLOW_SPACE["defaults"], "epochs", 200)  # a trial of about 10 s
    proc = cli(search_args(tmp_path, 1, "--study", "live"), tiny_data, stores, stores["storage"])
    try:
        child = running_trial_run(stores, time.monotonic() + 120)
        parent = child.data.tags[tracking.PARENT_RUN_ID]
        number = child.data.tags[tracking.TRIAL_NUMBER]
        line = (
            f"error: study 'live' is being searched now (parent run {parent} on host "
            f"{socket.gethostname()}, pid {proc.pid}; trial {number} running): stop that "
            f"search (Ctrl-C, or kill {proc.pid}) and try again; {STOP}\n"
        )
        for extra in ((), ("--force",)):
            result = invoke("delete-study", "live", "--yes", *extra)
            assert (result.exit_code, result.stderr, result.stdout) == (2, line, "")
        assert optuna.get_all_study_names(stores["storage"]) == ["live"]
        assert stages(stores["tracking"], [parent, child.info.run_id]) == {"active"}
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    client = MlflowClient(tracking_uri=stores["tracking"])
    runs = client.search_runs([client.get_experiment_by_name("imdb").experiment_id])
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert {r.info.lifecycle_stage for r in runs} == {"active"}
    study = optuna.load_study(study_name="live", storage=stores["storage"])
    assert [t.state for t in study.trials] == [S.COMPLETE]


def dead_pid() -> int:
    """The id of a process that has ended."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def make_leftovers(storage: str, uri: str) -> dict[str, str]:
    """Study gone: trial 0 COMPLETE, trial 1 RUNNING that never beat (started in 2024),
    trial 2 RUNNING whose last heartbeat was in 2024; in MLflow, its parent run RUNNING
    with the pid of a process that has ended and an old alive_at, and trial 1's run
    RUNNING (trial 0's FINISHED)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="gone", storage=storage, direction="maximize")
    for made in (
        trial(S.COMPLETE, 0.5, 0, 1),
        trial(S.RUNNING, None, 2),
        trial(S.RUNNING, None, 3),
    ):
        study.add_trial(made)
    rdb = optuna.storages.RDBStorage(storage)
    trial_id = study.trials[2]._trial_id
    rdb.record_heartbeat(trial_id)
    with rdb.engine.begin() as conn:
        conn.execute(
            sqlalchemy.text("UPDATE trial_heartbeats SET heartbeat = :t WHERE trial_id = :id"),
            {"t": T0, "id": trial_id},
        )
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("imdb")
    pid = dead_pid()
    tags = {tracking.STUDY: "gone", tracking.KIND: "search"}
    alive = {tracking.HOST: socket.gethostname(), tracking.PID: str(pid), tracking.ALIVE_AT: "1"}
    parent = client.create_run(experiment, tags=tags | alive).info.run_id
    made = {"parent": parent, "pid": str(pid)}
    for number in (0, 1):
        child = tags | {tracking.PARENT_RUN_ID: parent, tracking.TRIAL_NUMBER: str(number)}
        made[f"trial {number}"] = client.create_run(experiment, tags=child).info.run_id
    client.set_terminated(made["trial 0"], "FINISHED")
    return made


def test_delete_study_with_leftovers_of_a_dead_search(storage, stores):
    """Without --force: refused, one line naming the leftovers, nothing changed. With it:
    the RUNNING runs set KILLED, then the study deleted and every run marked deleted."""
    made = make_leftovers(storage, stores["tracking"])
    runs = [made["parent"], made["trial 0"], made["trial 1"]]
    result = invoke("delete-study", "gone", "--yes")
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"error: study 'gone' has RUNNING leftovers of a search that is gone (parent run "
        f"{made['parent']} on host {socket.gethostname()}, pid {made['pid']}; trials 1, 2; "
        f"1 trial run): --force marks them KILLED and deletes the study\n"
    )
    assert optuna.get_all_study_names(storage) == ["gone"]
    assert stages(stores["tracking"], runs) == {"active"}
    assert statuses(stores["tracking"], runs) == {"RUNNING", "FINISHED"}
    result = invoke("delete-study", "gone", "--yes", "--force")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[:2] == [
        f"deleted study 'gone' (3 trials) from {mask(storage)}",
        "marked 3 MLflow runs deleted (2 left RUNNING set KILLED first); to purge every "
        "deleted run:",
    ]
    assert optuna.get_all_study_names(storage) == []
    assert stages(stores["tracking"], runs) == {"deleted"}
    client = MlflowClient(tracking_uri=stores["tracking"])
    assert [client.get_run(r).info.status for r in runs] == ["KILLED", "FINISHED", "KILLED"]


def test_delete_study_refuses_trials_that_still_beat(storage, stores):
    """A RUNNING trial that beat just now, and no live search in this MLflow store (a
    search logging elsewhere): refused, --force too."""
    study = optuna.create_study(study_name="beats", storage=storage)
    running = study.ask()  # RUNNING, started now
    optuna.storages.RDBStorage(storage).record_heartbeat(running._trial_id)
    line = (
        f"error: study 'beats' has trial 0 running now (last heartbeat 0 s ago) but no live "
        f"search in MLflow at {stores['tracking']}: stop what runs it (a search logging to "
        f"another tracking store, or workers of a killed search) and try again; a trial "
        f"silent for 300 s counts as dead; {STOP}\n"
    )
    for extra in ((), ("--force",)):
        result = invoke("delete-study", "beats", "--yes", *extra)
        assert result.exit_code == 2, result.output
        assert re.sub(r"heartbeat \d s ago", "heartbeat 0 s ago", result.stderr) == line
    assert optuna.get_all_study_names(storage) == ["beats"]
