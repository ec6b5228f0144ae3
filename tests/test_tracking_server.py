"""A search against a real `mlflow server` (HTTP tracking, proxied artifacts), as a team
would run it: nothing mocked."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request

import pytest
from mlflow.tracking import MlflowClient

from pipeline import engine
from tests.conftest import TINY_SPACE, _free_port, artifacts, runs_of, space_file


class MlflowServer:
    """`mlflow server` on a port of 127.0.0.1, stopped and started again at will."""

    def __init__(self, folder) -> None:
        self.port, self.folder, self.process = _free_port(), folder, None
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", f"sqlite:///{self.folder / 'server.db'}",
            "--artifacts-destination", str(self.folder / "server-artifacts"),
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/health", timeout=2)
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("mlflow server did not start")
                time.sleep(0.5)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.fixture
def server(tmp_path):
    server = MlflowServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mlflow_server(server) -> str:
    return server.url


@pytest.mark.slow
def test_search_logs_to_a_tracking_server(tiny_data, stores, tmp_path, mlflow_server):
    cfg = engine.SearchJob(
        dataset="imdb",
        space=space_file(tmp_path, TINY_SPACE),
        n_trials=2,
        tracking_uri=mlflow_server,
    )
    outcome = engine.search(cfg)
    parents, children = runs_of(mlflow_server, "imdb")
    assert len(parents) == 1 and len(children) == 2
    assert {c.data.tags["trial_state"] for c in children} == {"COMPLETE"}
    client = MlflowClient(tracking_uri=mlflow_server)
    history = client.get_metric_history(children[0].info.run_id, "val_accuracy")
    assert [m.step for m in history] == [1]  # one epoch in TINY_SPACE
    assert "learning_curves.png" in artifacts(client, children[0].info.run_id)
    assert "best_model.keras" in artifacts(client, parents[0].info.run_id)
    assert (tmp_path / "server-artifacts").is_dir()  # stored by the server, not locally
    assert outcome.parent_run_id == parents[0].info.run_id
    champion = client.get_model_version_by_alias("imdb", "champion")  # registered there too
    assert outcome.model_uri == f"models:/imdb/{champion.version}"
    assert champion.run_id == parents[0].data.tags["best_run_id"]


@pytest.mark.slow
def test_a_restarted_tracking_server_is_waited_for(tiny_data, stores, tmp_path, server):
    """The server restarts mid-study (a deployment, a crash and restart): the search waits
    for it, finishes every trial, exit 0, and nothing stays RUNNING."""
    from tests.test_faults import cli, finish, search_args

    args = search_args(tmp_path, 3, "--study", "restart", "--tracking-uri", server.url)
    proc = cli(args, tiny_data, stores, stores["storage"])
    client = MlflowClient(tracking_uri=server.url)
    deadline = time.monotonic() + 120
    while not _running_trial(client) and time.monotonic() < deadline:
        time.sleep(0.2)
    server.stop()
    time.sleep(15)  # past MLflow's own HTTP retries (3, about 7 s), which ride out less
    server.start()
    err = finish(proc, 0)
    assert "is unreachable" in err and "is back" in err
    parents, children = runs_of(server.url, "imdb")
    assert [p.info.status for p in parents] == ["FINISHED"]
    finished = [c for c in children if c.info.status == "FINISHED"]
    assert sorted(int(c.data.tags["trial_number"]) for c in finished) == [0, 1, 2]
    assert not [c for c in children if c.info.status == "RUNNING"]


def _running_trial(client: MlflowClient) -> bool:
    exp = client.get_experiment_by_name("imdb")
    if exp is None:
        return False
    runs = client.search_runs([exp.experiment_id], "attributes.status = 'RUNNING'")
    return any("trial_number" in r.data.tags for r in runs)
