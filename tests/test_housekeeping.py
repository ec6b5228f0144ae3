"""`pipeline studies` and `pipeline delete-study` through the real CLI, on SQLite and on
PostgreSQL; the studies and runs are made with Optuna and MlflowClient directly (no
training)."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState, create_trial
from typer.testing import CliRunner

from pipeline import tracking
from pipeline.cli import app
from pipeline.settings import mask

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
    make_studies(both["storage"])
    runs = make_runs(both["tracking"])
    result = invoke("delete-study", "alpha", "--yes")  # the stores of the environment
    assert result.exit_code == 0, result.output
    tracking_uri = mask(both["tracking"])
    assert result.stdout.splitlines() == [
        f"deleted study 'alpha' (8 trials) from {mask(both['storage'])}",
        f"marked {ALPHA_RUNS} MLflow runs deleted; to purge every deleted run:",
        f"  mlflow gc --backend-store-uri {tracking_uri} --tracking-uri {tracking_uri}",
    ]
    assert stages(both["tracking"], runs["alpha"]) == {"deleted"}
    assert stages(both["tracking"], runs["others"]) == {"active"}
    assert optuna.get_all_study_names(both["storage"]) == ["beta", "empty"]
    beta = optuna.load_study(study_name="beta", storage=both["storage"])
    assert len(beta.trials) == 3
    listed = json.loads(invoke("studies", "--json").stdout)
    assert [row["study"] for row in listed] == ["beta", "empty"]


def test_delete_study_asks_first(storage, stores):
    make_studies(storage)
    runs = make_runs(stores["tracking"])
    args = ("delete-study", "alpha", "--storage", storage, "--tracking-uri", stores["tracking"])
    question = (
        f"Delete study 'alpha' (8 trials, 1 of them RUNNING) from {mask(storage)} and mark its "
        f"{ALPHA_RUNS} MLflow runs deleted in {stores['tracking']}? [y/N]: "
    )
    for answer in ("n\n", "\n", ""):  # no, the default, stdin closed
        result = invoke(*args, answer=answer)
        assert result.exit_code == 1, result.output
        assert result.stdout.startswith(question)
        assert result.stderr == "nothing deleted\n"
        assert stages(stores["tracking"], runs["alpha"]) == {"active"}
        assert optuna.get_all_study_names(storage) == ["alpha", "beta", "empty"]
    result = invoke(*args, answer="y\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(
        question + f"y\ndeleted study 'alpha' (8 trials) from {mask(storage)}\n"
    )
    assert stages(stores["tracking"], runs["alpha"]) == {"deleted"}
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
