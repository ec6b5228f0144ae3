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


@pytest.fixture
def mlflow_server(tmp_path):
    port = _free_port()
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
        "--artifacts-destination", str(tmp_path / "server-artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("mlflow server did not start")
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_search_logs_to_a_tracking_server(tiny_data, stores, tmp_path, mlflow_server):
    cfg = engine.SearchOptions(
        "imdb", space_file(tmp_path, TINY_SPACE), n_trials=2, tracking_uri=mlflow_server
    )
    outcome = engine.run_search(cfg)
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
