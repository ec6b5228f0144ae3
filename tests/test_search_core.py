"""The search core's contracts: plans travel whole, conventions have one owner, a trial's
record failures belong to that trial, and study names need no escaping by the user."""

from __future__ import annotations

import logging
import pickle
import threading
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from pipeline import metrics, search, tracking
from pipeline.cli import app
from pipeline.errors import UserError
from pipeline.search import records
from tests.conftest import runs_of, space_file
from tests.test_reproduce import TINY_TABLE, table_file

PACKAGE = Path(__file__).resolve().parent.parent / "pipeline"


def test_plans_pickle_whole(tiny_data, stores, tmp_path):
    options = search.SearchOptions("imdb", space_file(tmp_path), n_trials=3, workers=2)
    plan = search.search_plan(options)
    again = pickle.loads(pickle.dumps(plan))
    assert again == plan
    assert dict(again.trials.space.defaults) == dict(plan.trials.space.defaults)
    assert again.dataset.task == "binary" and again.stores.storage == stores["storage"]
    assert again.tags == {
        "study": "imdb",
        "sampler": "tpe",
        "pruner": "median",
        "objectives": "accuracy",
    }
    table = search.reproduce_plan(str(table_file(tmp_path)), seeds=2)
    assert pickle.loads(pickle.dumps(table)) == table
    assert table.n_trials == 4 and table.pruner == "none" and table.study == "reproduce-tiny-imdb"


def test_csv_dataset_resolves_once_into_the_plan(tmp_path, stores, monkeypatch):
    monkeypatch.setenv("PIPELINE_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "texts.csv"
    path.write_text(
        "text,label\n" + "".join(f"good film {i},pos\nbad film {i},neg\n" for i in range(20))
    )
    plan = search.search_plan(search.SearchOptions(f"csv:{path}", n_trials=1))
    assert plan.dataset.name == f"csv:{path}?text=text&label=label"
    assert plan.dataset.class_names == ("neg", "pos") and plan.dataset.task == "binary"
    assert Path(plan.parent_params["space"]).name == "text.yaml"
    path.unlink()  # the plan carries what it needs: nothing reads the name again
    travelled = pickle.loads(pickle.dumps(plan)).dataset
    assert (travelled.name, travelled.class_names) == (plan.dataset.name, ("neg", "pos"))


@pytest.mark.parametrize(
    ("metric", "direction"),
    [
        ("accuracy", "maximize"),
        ("val_accuracy", "maximize"),
        ("final_val_mae", "minimize"),
        ("test_loss", "minimize"),
        ("n_params", "minimize"),
        ("latency_ms", "minimize"),
    ],
)
def test_one_rule_says_which_way_is_better(metric, direction):
    assert metrics.direction(metric) == direction


def test_objectives_give_the_study_directions():
    assert metrics.directions(("accuracy", "params")) == ["maximize", "minimize"]
    assert metrics.directions(metrics.parse_objectives("regression", None)) == ["minimize"]


def test_study_names_with_quotes(tiny_data, stores, tmp_path):
    for name in ("it's", 'say "it\'s"'):
        options = search.SearchOptions(
            "imdb", space_file(tmp_path), n_trials=1, pruner="none", study=name
        )
        outcome = search.run_search(options)
        assert outcome.ran == 1
        result = CliRunner().invoke(app, ["export", "imdb", "--study", name, "--format", "csv"])
        assert result.exit_code == 0, result.output
        rows = result.output.strip().splitlines()
        assert len(rows) == 2 and rows[1].endswith(
            outcome.study.trials[0].user_attrs["mlflow_run_id"]
        )
    runs = tracking.Tracker(stores["tracking"]).trial_runs("imdb", 'say "it\'s"')
    assert [r["tags"]["study"] for r in runs] == ['say "it\'s"']


def test_a_failed_record_fails_its_own_trial(tiny_data, stores, tmp_path, monkeypatch):
    failed_runs: list[str] = []
    log_metrics = tracking.Tracker.log_metrics

    def flaky(self, run_id, history=None, values=None):
        if history and not failed_runs:  # the first trial's per-epoch metrics
            failed_runs.append(run_id)
            raise UserError("MLflow at sqlite: database is locked")
        return log_metrics(self, run_id, history, values)

    monkeypatch.setattr(tracking.Tracker, "log_metrics", flaky)
    options = search.SearchOptions("imdb", space_file(tmp_path), n_trials=2, pruner="none")
    study = search.run_search(options).study
    states = [t.state for t in study.trials]
    assert states == [optuna.trial.TrialState.FAIL] + [optuna.trial.TrialState.COMPLETE] * 2
    assert (
        "recording in MLflow: MLflow at sqlite: database is locked"
        in study.trials[0].user_attrs["error"]
    )
    client = MlflowClient(tracking_uri=stores["tracking"])
    assert client.get_run(failed_runs[0]).info.status == "FAILED"
    _, children = runs_of(stores["tracking"], "imdb")
    finished = sorted(
        int(c.data.tags["trial_number"]) for c in children if c.info.status == "FINISHED"
    )
    assert finished == [1, 2]


def test_a_failed_file_upload_is_a_warning_on_its_trial(
    tiny_data, stores, tmp_path, monkeypatch, caplog
):
    write = records.write_trial_files
    calls = []

    def broken_once(folder, result, class_names, summary):
        calls.append(1)
        if len(calls) == 1:
            raise OSError("disk full")
        return write(folder, result, class_names, summary)

    monkeypatch.setattr(records, "write_trial_files", broken_once)
    options = search.SearchOptions("imdb", space_file(tmp_path), n_trials=2, pruner="none")
    with caplog.at_level(logging.WARNING, logger="pipeline"):
        study = search.run_search(options).study
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2
    assert "trial 0: its files were not logged to MLflow: disk full" in caplog.text
    client = MlflowClient(tracking_uri=stores["tracking"])
    first = client.get_run(study.trials[0].user_attrs["mlflow_run_id"])
    assert first.data.tags["artifacts_error"] == "disk full" and first.info.status == "FINISHED"
    second = study.trials[1].user_attrs["mlflow_run_id"]
    assert "history.csv" in {a.path for a in client.list_artifacts(second)}
    assert not [t for t in threading.enumerate() if t.name.startswith("mlflow-files")]


def test_the_package_reads_without_lookups_by_name():
    for path in PACKAGE.rglob("*.py"):
        source = path.read_text()
        assert "importlib" not in source, path
        assert len(source.splitlines()) <= 300, path


def test_a_reproduce_plan_names_its_rows(tmp_path, stores):
    plan = search.reproduce_plan(str(table_file(tmp_path)), seeds=1)
    assert [row.reported["accuracy"] for row in plan.trials.table.rows] == [
        r["seed"]["accuracy"] for r in TINY_TABLE["rows"]
    ]
