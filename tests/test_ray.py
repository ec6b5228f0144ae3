"""Workers placed by a real local Ray (127.0.0.1): exact trial counts, a worker killed
mid-trial, stores a multi-node cluster cannot share, GPU fractions, and data that
reaches a worker through Ray's object store."""

from __future__ import annotations

import os
import signal
import time

import mlflow
import optuna
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

import pipeline
from pipeline import engine, tracking, trial_record
from pipeline.cli import app
from pipeline.engine import ensembling
from pipeline.engine.plan import RayOptions
from tests.conftest import (
    TINY_SPACE,
    check_best_everywhere,
    check_one_run_per_trial,
    runs_of,
    space_file,
)
from tests.test_arrays import KERAS_TUNER_DIGITS, digits
from tests.test_faults import (
    check_killed_trial_retried,
    cli,
    finish,
    running_trial_run,
    search_args,
)

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def no_ray_left():
    yield
    if ray.is_initialized():
        ray.shutdown()


def test_two_ray_workers_finish_exactly_four_trials_under_one_parent(tiny_data, stores, tmp_path):
    searched = {**TINY_SPACE["search"], "ngrams": {"type": "categorical", "choices": [1, 2]}}
    space = space_file(tmp_path, {**TINY_SPACE, "search": searched})
    options = engine.SearchJob(
        dataset="imdb", space=space, n_trials=4, pruner="none", workers=2, ray=RayOptions("local")
    )
    outcome = engine.search(options)
    check_one_run_per_trial(stores, "imdb", outcome.study, 4)
    parents, children = runs_of(stores["tracking"], "imdb")
    assert len(parents) == 1 and len(children) == 4
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parents[0].info.run_id}
    assert len({c.data.tags["worker_pid"] for c in children}) == 2  # two Ray workers
    assert all(len(c.data.tags["ray_node"]) == 56 for c in children)  # Ray's node id
    assert {c.data.tags["host"] for c in children} == {os.uname().nodename}
    assert {c.data.tags["ray_node_ip"] for c in children} == {"127.0.0.1"}
    # bigrams were vectorized by the driver's data server, not by a worker reading archives
    assert {c.data.params["ngrams"] for c in children} <= {"1", "2"}
    assert outcome.model_uri == "models:/imdb/1"
    assert not ray.is_initialized()  # the private Ray stopped with the search
    check_best_everywhere(outcome.study, stores)
    # the Ray workers kept every trial's predictions and bundle (the best 20): an
    # ensemble chosen from them reads raw text, its members' features fitted on the driver
    assert outcome.ensemble is not None and outcome.ensemble.candidates == 4
    tracker = tracking.Tracker(stores["tracking"])
    chosen = ensembling.register(outcome.ensemble, outcome.study, tracker, experiment="imdb")
    predicted = mlflow.pyfunc.load_model(chosen.model_uri).predict(
        pd.DataFrame({"text": ["a good film", "a bad film"]})
    )
    assert len(predicted) == 2 and set(predicted["label"]) <= {"negative", "positive"}


def test_a_sigkilled_ray_worker_trial_is_retried_and_nothing_is_left_running(
    tiny_data, stores, pg_storage, tmp_path
):
    args = search_args(tmp_path, 4, "--workers", "2", "--heartbeat", "1", "--study", "rk")
    proc = cli([*args, "--ray", "local"], tiny_data, stores, pg_storage)
    victim = running_trial_run(stores, time.monotonic() + 180)
    time.sleep(0.5)
    os.kill(int(victim.data.tags["worker_pid"]), signal.SIGKILL)
    err = finish(proc, 0)
    assert "Ray worker" in err and "lost" in err
    check_killed_trial_retried("rk", pg_storage, stores, victim, 4)


def test_a_multi_node_ray_with_sqlite_stores_is_refused_in_one_line(tiny_data, stores, tmp_path):
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        args = ["search", "imdb", "--space", str(space_file(tmp_path)), "--n-trials", "2"]
        result = CliRunner().invoke(app, [*args, "--ray", cluster.address, "--workers", "2"])
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [
        "error: a Ray cluster of 2 nodes needs stores every node reaches: --storage "
        "postgresql://... for Optuna and MLFLOW_TRACKING_URI=http://... (an MLflow tracking "
        "server), not SQLite"
    ]
    assert optuna.study.get_all_study_summaries(stores["storage"]) == []
    assert MlflowClient(tracking_uri=stores["tracking"]).get_experiment_by_name("imdb") is None


def test_workers_share_one_declared_gpu_by_quarters(tiny_data, stores, tmp_path):
    """Two workers of a quarter GPU each on a one-GPU node (four would fit: two keep the
    2-core test machine from queueing them)."""
    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, _node_ip_address="127.0.0.1")
    options = engine.SearchJob(
        dataset="imdb",
        space=space_file(tmp_path),
        n_trials=2,  # one each: a worker's share is its quota
        pruner="none",
        workers=2,
        ray=RayOptions("auto", cpus_per_worker=1, gpus_per_worker=0.25),
    )
    outcome = engine.search(options)
    check_one_run_per_trial(stores, "imdb", outcome.study, 2)
    _, children = runs_of(stores["tracking"], "imdb")
    assert {c.data.tags["ray_gpu_ids"] for c in children} == {"0"}
    assert len({c.data.tags["worker_pid"] for c in children}) == 2


def test_ray_options_are_checked_before_anything_starts(tiny_data, stores, tmp_path):
    space = str(space_file(tmp_path))
    cases = {
        ("--gpus-per-worker", "0.5"): "--cpus-per-worker and --gpus-per-worker go with --ray",
        ("--ray", "local", "--gpus-per-worker", "-1"): "--gpus-per-worker must be 0 or more",
        ("--ray", "local", "--cpus-per-worker", "0"): "--cpus-per-worker must be a positive",
        ("--ray", "local", "--workers", "2", "--gpus-per-worker", "1"): (
            "2 Ray workers of 1 GPU need 2; the cluster has 0"
        ),
    }
    for extra, message in cases.items():
        result = CliRunner().invoke(app, ["search", "imdb", "--space", space, *extra])
        assert result.exit_code == 2, (extra, result.output)
        assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert optuna.study.get_all_study_summaries(stores["storage"]) == []


def test_arrays_reach_ray_workers_through_the_object_store(stores, tmp_path, monkeypatch):
    """The driver's data server reads the arrays' files; Ray workers get the splits from
    Ray's object store (a node elsewhere has no such files)."""
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(tmp_path / "data"))
    namespace: dict = {}
    exec(KERAS_TUNER_DIGITS, namespace)  # a Keras Tuner model
    x, y = digits(160)
    found = pipeline.search(
        "digits",
        x=x,
        y=y,
        builder=namespace["build_model"],
        space={"defaults": {"epochs": 2, "batch_size": 16}},
        n_trials=2,
        workers=2,
        ray=RayOptions("local"),
        pruner="none",
        show=False,
    )
    assert [t.state.name for t in found.study.trials] == ["COMPLETE", "COMPLETE"]
    client = MlflowClient(tracking_uri=stores["tracking"])
    runs = [client.get_run(trial_record.read(t).run_id) for t in found.study.trials]
    assert all(len(r.data.tags["ray_node"]) == 56 for r in runs)  # trained by Ray workers
    assert found.best_model().predict(x[:4], verbose=0).shape == (4, 3)
