"""The best model, ready to use: raw input in, logged and registered in MLflow with a
champion alias, `pipeline predict`, served by `mlflow models serve`; and the MLflow-native
record (datasets, experiment kind, no migration chatter)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from pipeline import datasets, engine, inference, params
from pipeline.cli import app
from pipeline.datasets.builtin import boston_housing, imdb, reuters
from pipeline.datasets.splits import TEST_FRACTION, shuffled, train_test
from pipeline.tracking import models
from pipeline.training import train_and_evaluate
from tests.conftest import TINY_SPACE, _free_port, runs_of, space_file

LOSS = {"binary": "binary_crossentropy", "multiclass": "sparse_categorical_crossentropy"}


def raw_test_split(name: str, data_dir: Path):
    """The test split as raw inputs, read from the archive as a user would."""
    if name == "imdb":
        return imdb.read_reviews(data_dir / "aclImdb_v1.tar.gz")["test"]
    if name == "reuters":
        texts, labels = reuters.read_newswires(data_dir / "reuters21578.tar.gz")
        rows = shuffled(len(texts))[int(len(texts) * (1 - TEST_FRACTION)) :]
        return [texts[i] for i in rows], labels[rows]
    table = boston_housing.read_housing_data(data_dir / "housing.data")
    rows = train_test(len(table.labels))[1]
    return table.features.iloc[rows].astype(float), table.targets()[rows]


@pytest.mark.parametrize(
    ("name", "extra"),
    [
        ("imdb", {"output_mode": "nb", "ngrams": 2}),
        ("imdb", {"output_mode": "tf_idf", "max_tokens": 40}),
        ("imdb", {"family": "embedding", "max_tokens": 60, "sequence_length": 16}),
        ("reuters", {"output_mode": "count"}),
        ("boston_housing", {}),
    ],
)
def test_the_bundle_reads_raw_input_as_the_trial_did(tiny_data, tmp_path, name, extra):
    spec = datasets.spec_of(name)
    loss = LOSS.get(spec.task, "mse")
    values = {"units": [8], "loss": loss, "epochs": 3, "batch_size": 8, "learning_rate": 0.02}
    values |= extra | ({"embedding_dim": 4} if "family" in extra else {})
    options = params.data_options(values)
    data = datasets.load_dataset(spec, options)
    result = train_and_evaluate(values, data, seed=0)
    result.model.save(tmp_path / "m.keras")
    fitted = datasets.fitted_for(spec, options)
    bundle = inference.save_bundle(
        tmp_path / "bundle", tmp_path / "m.keras", fitted, spec.task, data.class_names
    )
    inputs, truth = raw_test_split(name, tiny_data)
    out = inference.Predictor(bundle).predict(inputs)
    if spec.task == "regression":
        mae = float(np.mean(np.abs(out["value"].to_numpy() - truth)))
        assert mae == pytest.approx(result.test["test_mae"], rel=1e-4)
        return
    index = [data.class_names.index(label) for label in out["label"]]
    assert np.mean(np.array(index) == truth) == pytest.approx(result.test["test_accuracy"])
    assert np.allclose(out.filter(like="p_").sum(axis=1), 1.0, atol=1e-5)


def test_a_search_registers_its_champion_and_predict_uses_it(tiny_data, stores, tmp_path):
    engine.search(engine.SearchJob(dataset="imdb", space=space_file(tmp_path), n_trials=2))
    client = MlflowClient(tracking_uri=stores["tracking"])
    champion = client.get_model_version_by_alias("imdb", models.CHAMPION)
    parents, children = runs_of(stores["tracking"], "imdb")
    best_run = parents[0].data.tags["best_run_id"]
    assert champion.run_id == best_run and str(champion.version) == "1"
    assert float(champion.tags[models.VALUE_TAG]) == pytest.approx(
        parents[0].data.metrics["best_value"]
    )
    assert parents[0].data.tags["best_model_uri"] == "models:/imdb/1"
    texts = ["great wonderful superb moving film", "awful terrible boring dull waste"]
    result = CliRunner().invoke(app, ["predict", "imdb", *texts, "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output[result.output.index("[") :])
    assert [r["input"] for r in rows] == texts
    assert {r["label"] for r in rows} <= {"negative", "positive"}
    local = models.load_model(stores["tracking"], "models:/imdb@champion").predict(
        pd.DataFrame({"text": texts})
    )
    assert [r["probability"] for r in rows] == pytest.approx(list(local["probability"]))
    table = CliRunner().invoke(app, ["predict", "models:/imdb/1", texts[0]])
    assert table.exit_code == 0 and "| great wonderful superb moving film |" in table.output
    for child in children:  # the splits each trial read, as MLflow datasets
        contexts = sorted(i.tags[0].value for i in child.inputs.dataset_inputs)
        assert contexts == ["test", "train", "validation"]
    experiment = client.get_experiment_by_name("imdb")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


def test_the_champion_changes_only_for_a_better_version(stores):
    client = MlflowClient(tracking_uri=stores["tracking"])
    client.create_registered_model("m")
    for _ in range(3):
        client.create_model_version("m", source="file:///nowhere")
    assert models.crown(client, "m", "1", ("val_accuracy", 0.80, False))
    assert models.crown(client, "m", "2", ("val_accuracy", 0.85, False))
    assert not models.crown(client, "m", "3", ("val_accuracy", 0.83, False))
    assert str(client.get_model_version_by_alias("m", models.CHAMPION).version) == "2"
    assert models.crown(client, "m", "3", ("val_mae", 2.1, True))  # another metric: not compared


def test_a_class_folder_model_predicts_class_names(stores, tmp_path, monkeypatch):
    monkeypatch.setenv("PIPELINE_CACHE_DIR", str(tmp_path / "cache"))
    words = {"sports": "goal match team score win", "weather": "rain storm cloud wind snow"}
    for label, text in words.items():
        (tmp_path / "texts" / label).mkdir(parents=True)
        for i in range(15):
            (tmp_path / "texts" / label / f"{i}.txt").write_text(f"{text} day {i}")
    folder = f"folder:{tmp_path / 'texts'}"
    raw = {**TINY_SPACE, "defaults": {**TINY_SPACE["defaults"], "epochs": 8}}
    engine.search(engine.SearchJob(dataset=folder, space=space_file(tmp_path, raw), n_trials=1))
    result = CliRunner().invoke(app, ["predict", folder, "rain and wind", "--format", "csv"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0] == "input,label,probability"
    text, label, probability = lines[1].split(",")
    assert (text, label) == ("rain and wind", "weather")  # words only weather texts hold
    assert 0.5 < float(probability) <= 1.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["predict", "models:/nope/1", "x"], "no model at models:/nope/1"),
        (["predict", "imdb", "x"], "no model at models:/imdb@champion"),
        (["predict", "imdb"], "nothing to predict: give texts or --file FILE"),
        (["predict", "imdb", "--file", "EMPTY"], "EMPTY: no inputs in the file"),
        (["predict", "imdb", "x", "--format", "xml"], "unknown format 'xml'"),
    ],
)
def test_predict_errors_are_one_line(stores, tmp_path, args, message):
    (tmp_path / "empty.txt").write_text("\n")
    args = [str(tmp_path / "empty.txt") if a == "EMPTY" else a for a in args]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert message.replace("EMPTY", str(tmp_path / "empty.txt")) in lines[0]


def test_a_missing_text_column_is_named(tiny_data, stores, tmp_path):
    engine.search(engine.SearchJob(dataset="imdb", space=space_file(tmp_path), n_trials=1))
    (tmp_path / "in.csv").write_text("review\ngood\n")
    result = CliRunner().invoke(app, ["predict", "imdb", "--file", str(tmp_path / "in.csv")])
    assert result.exit_code == 2
    assert "in.csv: no column 'text'; columns are review" in result.output


def test_a_store_without_a_registry_is_one_warning(
    tiny_data, stores, tmp_path, monkeypatch, caplog
):
    def no_registry(*args, **kwargs):
        raise MlflowException("model registry functionality is unavailable")

    monkeypatch.setattr(models.mlflow, "register_model", no_registry)
    with caplog.at_level(logging.WARNING):
        outcome = engine.search(
            engine.SearchJob(dataset="imdb", space=space_file(tmp_path), n_trials=1)
        )
    assert outcome.model_uri is None and len(outcome.study.trials) == 1
    registry = [
        r
        for r in caplog.records
        if r.levelno >= logging.WARNING and "regist" in r.getMessage().lower()
    ]
    assert [(r.name, r.levelname) for r in registry] == [("pipeline", "WARNING")]
    assert registry[0].getMessage() == (
        f"model logged but not registered ({stores['tracking']}): "
        "model registry functionality is unavailable"
    )


def test_a_new_store_is_created_quietly(tiny_data, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'fresh.db'}")
    monkeypatch.setenv("PIPELINE_STORAGE", f"sqlite:///{tmp_path / 'optuna.db'}")
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    args = ["search", "imdb", "--space", str(space_file(tmp_path)), "--n-trials", "1"]
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", *args], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Creating initial MLflow database tables" not in done.stderr
    assert "Traceback" not in done.stderr


def _wait(url: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer")


@pytest.mark.slow
def test_mlflow_models_serve_answers_raw_texts(tiny_data, stores, tmp_path):
    engine.search(engine.SearchJob(dataset="imdb", space=space_file(tmp_path), n_trials=2))
    port = _free_port()
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/imdb@champion"]
    command += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # uvicorn
    server = subprocess.Popen(
        command, env=os.environ | {"PATH": path}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        _wait(f"http://127.0.0.1:{port}/ping", time.monotonic() + 120)
        texts = ["great wonderful superb", "awful boring dull", "the plot of the film"]
        body = json.dumps({"dataframe_split": {"columns": ["text"], "data": [[t] for t in texts]}})
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=body.encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            served = pd.DataFrame(json.loads(response.read())["predictions"])
    finally:
        server.terminate()
        server.wait(30)
    local = models.load_model(stores["tracking"], "models:/imdb@champion")
    expected = local.predict(pd.DataFrame({"text": texts}))
    assert list(served["label"]) == list(expected["label"])
    assert set(served["label"]) <= {"negative", "positive"}
    assert np.allclose(served["probability"], expected["probability"], atol=1e-6)


@pytest.mark.slow
def test_pipeline_dashboard_serves_the_studies(tiny_data, stores, tmp_path):
    engine.search(engine.SearchJob(dataset="imdb", space=space_file(tmp_path), n_trials=1))
    port = _free_port()
    command = [sys.executable, "-m", "pipeline", "dashboard", "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(f"http://127.0.0.1:{port}/api/studies", time.monotonic() + 60)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=10) as r:
            names = [s["study_name"] for s in json.loads(r.read())["study_summaries"]]
    finally:
        server.terminate()
        server.wait(30)
    assert names == ["imdb"]
