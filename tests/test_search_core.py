"""The search core's contracts: plans travel whole, conventions have one owner, a trial's
record failures belong to that trial, and study names need no escaping by the user."""

from __future__ import annotations

import copy
import csv
import dataclasses
import functools
import importlib.util
import logging
import pickle
import re
import threading
from pathlib import Path
from types import MappingProxyType, SimpleNamespace

import optuna
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from pipeline import datasets, engine, metrics, tracking
from pipeline.cli import app
from pipeline.engine import planner, records, runner, trials, workers
from pipeline.engine.plan import Plan, WorkerSlot
from pipeline.errors import UserError
from tests.conftest import TINY_SPACE, runs_of, space_file
from tests.test_reproduce import TINY_TABLE, table_file


def test_plans_pickle_whole(tiny_data, stores, tmp_path):
    options = engine.SearchJob(dataset="imdb", space=space_file(tmp_path), n_trials=3, workers=2)
    plan = planner.search_plan(options)
    again = pickle.loads(pickle.dumps(plan))
    assert again == plan
    assert dict(again.trials.space.defaults) == dict(plan.trials.space.defaults)
    assert again.dataset.task == "binary" and again.stores.storage == stores["storage"]
    assert again.tags == {
        "study": "imdb",
        "sampler": "tpe",
        "pruner": "median",
        "objectives": "accuracy",
        "backend": "tensorflow",
    }
    table = planner.reproduce_plan(engine.ReproduceJob(table=str(table_file(tmp_path)), seeds=2))
    assert pickle.loads(pickle.dumps(table)) == table
    assert table.n_trials == 4 and table.pruner == "none" and table.study == "reproduce-tiny-imdb"


def test_csv_dataset_resolves_once_into_the_plan(tmp_path, stores, monkeypatch):
    monkeypatch.setenv("PIPELINE_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "texts.csv"
    path.write_text(
        "text,label\n" + "".join(f"good film {i},pos\nbad film {i},neg\n" for i in range(20))
    )
    with path.open(newline="") as file:
        labels = sorted({row["label"] for row in csv.DictReader(file)})
    assert labels == ["neg", "pos"]  # what the file says
    plan = planner.search_plan(engine.SearchJob(dataset=f"csv:{path}", n_trials=1))
    assert plan.dataset.name == f"csv:{path}?text=text&label=label"
    assert plan.dataset.class_names == tuple(labels) and plan.dataset.task == "binary"
    assert Path(plan.parent_params["space"]).name == "text.yaml"
    # the same name now holds other texts and labels: read again, it would give other classes
    path.write_text(
        "text,label\n" + "".join(f"a {i},no\nb {i},yes\nc {i},maybe\n" for i in range(9))
    )
    assert datasets.spec_of(f"csv:{path}").class_names == ("maybe", "no", "yes")
    travelled = pickle.loads(pickle.dumps(plan)).dataset  # as a worker receives it
    assert travelled == plan.dataset  # a declared loader, not a closure: compares whole
    assert (travelled.name, travelled.class_names, travelled.task) == (
        plan.dataset.name,
        ("neg", "pos"),
        "binary",
    )
    path.unlink()  # the plan carries what it needs: nothing reads the name again
    assert pickle.loads(pickle.dumps(plan)).dataset.class_names == ("neg", "pos")


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
        options = engine.SearchJob(
            dataset="imdb", space=space_file(tmp_path), n_trials=1, pruner="none", study=name
        )
        outcome = engine.search(options)
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
    options = engine.SearchJob(
        dataset="imdb", space=space_file(tmp_path), n_trials=2, pruner="none"
    )
    study = engine.search(options).study
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
    options = engine.SearchJob(
        dataset="imdb", space=space_file(tmp_path), n_trials=2, pruner="none"
    )
    with caplog.at_level(logging.WARNING, logger="pipeline"):
        study = engine.search(options).study
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2
    assert "trial 0: its files were not logged to MLflow: disk full" in caplog.text
    client = MlflowClient(tracking_uri=stores["tracking"])
    first = client.get_run(study.trials[0].user_attrs["mlflow_run_id"])
    assert first.data.tags["artifacts_error"] == "disk full" and first.info.status == "FINISHED"
    second = study.trials[1].user_attrs["mlflow_run_id"]
    assert "history.csv" in {a.path for a in client.list_artifacts(second)}
    assert not [t for t in threading.enumerate() if t.name.startswith("mlflow-files")]


def _strings(value) -> list[str]:
    """Every string held in `value`: dataclass fields, mappings, sequences, partials."""
    if isinstance(value, str):
        return [value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [s for f in dataclasses.fields(value) for s in _strings(getattr(value, f.name))]
    if isinstance(value, dict | MappingProxyType):
        return [s for pair in value.items() for s in _strings(pair)]
    if isinstance(value, list | tuple | set | frozenset):
        return [s for item in value for s in _strings(item)]
    if isinstance(value, functools.partial):
        return _strings(value.args) + _strings(value.keywords)
    return []


def _names_a_module(text: str) -> bool:
    """Is `text` a dotted path (`package.module`, `module.function`) one could import?"""
    dotted = re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+", text)
    return dotted is not None and importlib.util.find_spec(text.split(".")[0]) is not None


def test_a_worker_process_receives_the_plan_not_names_to_look_up(
    tiny_data, stores, tmp_path, monkeypatch, caplog
):
    handed: list[bytes] = []  # what each worker process was started with, as spawn sends it
    errors: list[BaseException] = []

    class Process:  # multiprocessing's, but its "child" runs here, from the pickled arguments
        def __init__(self, target, args, name):
            self.target, self.args, self.name, self.exitcode = target, args, name, None

        def start(self):
            handed.append(pickle.dumps((self.target, self.args)))
            _, (work, arguments, _threads, _gpu, _backend) = pickle.loads(handed[-1])
            try:
                work(*arguments)
                self.exitcode = 0
            except Exception as error:  # a worker that cannot work dies: exit code 1
                errors.append(error)
                self.exitcode = 1

        def is_alive(self):
            return False

    context = SimpleNamespace(Process=Process)
    monkeypatch.setattr(workers, "multiprocessing", SimpleNamespace(get_context=lambda _: context))
    options = engine.SearchJob(dataset="imdb", space=space_file(tmp_path), n_trials=2, workers=2)
    plan = planner.search_plan(options)
    with caplog.at_level(logging.WARNING, logger="pipeline"):
        outcome = runner.run(plan)
    assert len(handed) == 2
    for index, payload in enumerate(handed):
        entry, (target, arguments, _, _, backend) = pickle.loads(payload)
        assert (entry, target) == (workers._entry, trials.work_in_process)
        assert backend == plan.backend == "tensorflow"  # set before the worker imports Keras
        assert [type(a) for a in arguments] == [Plan, WorkerSlot]
        got, slot = arguments
        assert (slot.index, slot.quota, slot.parent_run_id) == (index, 1, outcome.parent_run_id)
        names = [s for s in _strings(got) if _names_a_module(s)]
        assert not names, names  # values to use, not modules or functions to import
        assert got == plan
        # the dataset's Spec and the space's values travel, not names to resolve again
        assert isinstance(got.dataset, datasets.Spec) and got.dataset == datasets.spec_of("imdb")
        assert (got.dataset.name, got.dataset.task, got.dataset.n_classes) == ("imdb", "binary", 2)
        defaults = dict(got.trials.space.defaults)
        assert {k: defaults[k] for k in TINY_SPACE["defaults"]} == TINY_SPACE["defaults"]
        searched = {p.name: (p.kind, p.low, p.high, p.choices) for p in got.trials.space.params}
        assert searched == {
            "n_layers": ("int", 1, 2, ()),
            "units": ("int", 4, 16, ()),
            "activation": ("categorical", None, None, ("relu", "tanh")),
        }
    assert not errors, errors  # each worker worked from what it was handed
    assert "running them here" not in caplog.text  # no trial was left to the parent
    assert outcome.ran == 2 and engine.finished(outcome.study) == 2


def test_a_reproduce_plan_names_its_rows(tmp_path, stores):
    raw = copy.deepcopy(TINY_TABLE)
    raw["rows"][0]["setting"] = "the recipe"
    raw["rows"][1]["setting"] = "mse, two layers"
    plan = planner.reproduce_plan(
        engine.ReproduceJob(table=str(table_file(tmp_path, raw)), seeds=1)
    )
    rows = plan.trials.table.rows
    expected = []
    for index, row in enumerate(raw["rows"], 1):
        given = {k: v for k, v in row.items() if k not in ("seed", "setting")}
        params = {**raw["defaults"], **given, "n_layers": len(row["units"])}
        expected.append((index, row["setting"], params, row["seed"]))
    assert [(r.index, r.setting, r.params, r.reported) for r in rows] == expected
    assert [r.split for r in rows] == ["val", "test"]
    assert plan.trials.grid() == {"row": [1, 2], "replicate": [0]}
    for index, setting, params, _ in expected:  # a trial of the grid trains its row
        trial = optuna.trial.FixedTrial({"row": index, "replicate": 0})
        assert plan.trials.params_of(trial) == params, setting
