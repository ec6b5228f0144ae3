"""Keras backends: a search on JAX or PyTorch tags its runs and registers a model that reads
raw text; their trials import no TensorFlow once the data is cached. Keras picks its
backend once a process, and this one runs on TensorFlow: the others run in subprocesses."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from pipeline import backends, datasets
from pipeline.cli import app
from pipeline.errors import UserError
from tests.conftest import space_file

OTHERS = [
    pytest.param(name, marks=pytest.mark.skipif(not importlib.util.find_spec(name), reason=name))
    for name in ("jax", "torch")
]
NO_TENSORFLOW = "import sys; sys.modules['tensorflow'] = None  # as where it is not installed\n"


def run_python(code: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_backend_is_named_or_taken_from_keras_backend(monkeypatch):
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    assert backends.chosen(None) == "tensorflow"
    monkeypatch.setenv("KERAS_BACKEND", "TensorFlow")
    assert backends.chosen(None) == "tensorflow"
    with pytest.raises(UserError, match="unknown Keras backend 'mxnet'; use one of tensorflow"):
        backends.chosen("mxnet")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UserError, match=r"the jax backend needs the jax package: pip install"):
        backends.chosen("jax")


def test_a_process_already_on_tensorflow_refuses_another_backend(monkeypatch):
    import keras

    assert keras.backend.backend() == "tensorflow"  # this test process
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    with pytest.raises(UserError, match="already running on tensorflow in this process, not jax"):
        backends.select("jax")
    assert os.environ["KERAS_BACKEND"] == "tensorflow"  # left as it was


def test_an_unknown_backend_is_one_line_and_exit_2(tiny_data, stores):
    result = CliRunner().invoke(app, ["train", "imdb", "--backend", "mxnet"])
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: unknown Keras backend 'mxnet'; use one of tensorflow, jax, torch"
    )


@pytest.mark.slow
@pytest.mark.parametrize("backend", OTHERS)
def test_trials_on_another_backend_import_no_tensorflow_once_the_data_is_cached(backend, tiny_data):
    datasets.load_dataset("imdb")  # the cache, made here (vectorizing raw text needs TF)
    code = """
        import json, sys, tempfile
        from pipeline import backends, datasets
        backends.start(sys.argv[1], threads=1)
        from pipeline.training import train_and_evaluate
        data = datasets.load_dataset("imdb")
        params = {"units": [8, 8], "loss": "binary_crossentropy", "epochs": 3,
                  "batch_size": 16, "optimizer": "rmsprop", "learning_rate": 0.01}
        result = train_and_evaluate(params, data, seed=1, keep_best=True)
        result.model.save(tempfile.mkdtemp() + "/model.keras")
        print(json.dumps({"tensorflow": "tensorflow" in sys.modules,
                          "backend": backends.current(), "device": backends.devices(),
                          "epochs": result.epochs_run, "test": result.test}))
    """
    done = run_python(code, {"PIPELINE_DATA_DIR": str(tiny_data)}, backend)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["tensorflow"] is False
    assert (report["backend"], report["device"], report["epochs"]) == (backend, "CPU", 3)
    assert 0.0 <= report["test"]["test_accuracy"] <= 1.0
    assert report["test"]["test_loss"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("backend", OTHERS)
def test_a_search_on_another_backend_tags_its_runs_and_registers_a_text_model(
    backend, tiny_data, stores, tmp_path
):
    """Run where TensorFlow is not installed (the data cached elsewhere): the search still
    logs and registers its model, which reads raw text where TensorFlow is."""
    datasets.load_dataset("imdb")
    space = space_file(tmp_path)
    code = (
        NO_TENSORFLOW
        + f"""
from pipeline.cli import app
sys.argv = ["pipeline", "search", "imdb", "--backend", "{backend}", "--n-trials", "2",
            "--space", r"{space}", "--study", "on-{backend}", "--workers", "2"]
app()
"""
    )
    done = run_python(code, {"PIPELINE_DATA_DIR": str(tiny_data)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "reading raw text needs TensorFlow" in done.stderr
    client = MlflowClient(tracking_uri=stores["tracking"])
    runs = client.search_runs([client.get_experiment_by_name("imdb").experiment_id])
    trials = [r for r in runs if "trial_number" in r.data.tags]
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(trials) == 2 and len(parents) == 1
    assert {r.data.tags["backend"] for r in runs} == {backend}
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert [v.version for v in client.search_model_versions(f"name='on-{backend}'")] == [1]
    predicted = CliRunner().invoke(
        app, ["predict", f"on-{backend}", "great wonderful superb", "--format", "json"]
    )
    assert predicted.exit_code == 0, predicted.output
    rows = json.loads(predicted.output)
    assert len(rows) == 1 and rows[0]["label"] in ("negative", "positive")


@pytest.mark.slow
def test_raw_text_vectorized_on_jax_matches_tensorflow(tiny_data, tmp_path):
    """A JAX process that meets a new representation vectorizes it with TensorFlow's
    TextVectorization (dense rows there), into the same bags of words as on TensorFlow."""
    if not importlib.util.find_spec("jax"):
        pytest.skip("jax")
    options = datasets.DataOptions(text=datasets.TextSettings(max_tokens=40, ngrams=2))
    here = datasets.load_dataset("imdb", options)
    code = """
        import sys
        from pipeline import backends, datasets
        backends.start("jax")
        options = datasets.DataOptions(text=datasets.TextSettings(max_tokens=40, ngrams=2))
        data = datasets.load_dataset("imdb", options)
        print(backends.current(), data.train.x.nnz)
    """
    env = {"PIPELINE_DATA_DIR": str(tiny_data), "PIPELINE_CACHE_DIR": str(tmp_path / "jax")}
    done = run_python(code, env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["jax", str(here.train.x.nnz)]
    (cached,) = (tmp_path / "jax").glob("imdb-*.npz")
    there = datasets.text.load_splits(cached)
    for split in ("train", "val", "test"):
        assert (there[split][0] != getattr(here, split).x).nnz == 0
