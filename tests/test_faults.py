"""Many workers on a real PostgreSQL, and workers that die: nothing lost, nothing doubled."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from pipeline import engine
from tests.conftest import TINY_SPACE, check_one_run_per_trial, runs_of, space_file

pytestmark = pytest.mark.slow
SLOW_SPACE = {**TINY_SPACE, "defaults": {**TINY_SPACE["defaults"], "epochs": 40}}


def test_four_workers_on_postgres_finish_exactly_16(tiny_data, stores, pg_storage, tmp_path):
    cfg = engine.SearchJob(
        dataset="imdb",
        space=space_file(tmp_path),
        n_trials=16,
        pruner="none",
        workers=4,
        study="pg-four",
    )
    outcome = engine.search(cfg)
    storage = outcome.study._storage  # Optuna caches trials in front of the RDB storage
    assert type(storage) is optuna.storages._CachedStorage
    assert isinstance(storage._backend, optuna.storages.RDBStorage)
    assert storage._backend.engine.dialect.name == "postgresql"
    check_one_run_per_trial(stores, "imdb", outcome.study, 16)
    assert check_values(outcome.study, stores) == 16
    loaded = optuna.load_study(study_name="pg-four", storage=pg_storage)
    assert len(loaded.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == 16


def check_values(study: optuna.Study, stores) -> int:
    """Each COMPLETE trial's value is a validation accuracy of the 20 tiny IMDB validation
    reviews (a multiple of 1/20), the one its MLflow run logged; returns how many there are."""
    client = MlflowClient(tracking_uri=stores["tracking"])
    done = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    for trial in done:
        assert 0.0 <= trial.value <= 1.0, trial.value
        assert trial.value * 20 == pytest.approx(round(trial.value * 20), abs=1e-4), trial.value
        run = client.get_run(trial.user_attrs["mlflow_run_id"])
        assert run.data.metrics["final_val_accuracy"] == pytest.approx(trial.value)
    return len(done)


def cli(args: list[str], tiny_data, stores, storage: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "PIPELINE_STORAGE": storage,
        "MLFLOW_TRACKING_URI": stores["tracking"],
        "PIPELINE_DATA_DIR": str(tiny_data),
        "PYTHONUNBUFFERED": "1",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def search_args(tmp_path, n_trials: int, *extra: str) -> list[str]:
    """`pipeline search imdb` with slow (40-epoch) tiny trials, so a signal lands mid-trial."""
    space = space_file(tmp_path, SLOW_SPACE)
    return [
        "search",
        "imdb",
        "--space",
        str(space),
        "--n-trials",
        str(n_trials),
        "--pruner",
        "none",
        *extra,
    ]


def finish(proc: subprocess.Popen, code: int) -> str:
    """Wait for the CLI; check its exit code; return its stderr."""
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == code, err[-3000:]
    return err


def complete(study_name: str, storage: str) -> list:
    study = optuna.load_study(study_name=study_name, storage=storage)
    return study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))


def running_trial_run(stores, deadline: float):
    """Wait for a child run that is training, and return it."""
    client = MlflowClient(tracking_uri=stores["tracking"])
    while time.monotonic() < deadline:
        exp = client.get_experiment_by_name("imdb")
        if exp is not None:
            runs = client.search_runs([exp.experiment_id], "attributes.status = 'RUNNING'")
            runs = [r for r in runs if "worker_pid" in r.data.tags]
            if runs:
                return runs[0]
        time.sleep(0.2)
    raise AssertionError("no trial started")


def test_sigkilled_worker_trial_is_retried_and_its_run_killed(
    tiny_data, stores, pg_storage, tmp_path
):
    args = search_args(tmp_path, 6, "--workers", "2", "--heartbeat", "1", "--study", "kill")
    proc = cli(args, tiny_data, stores, pg_storage)
    victim = running_trial_run(stores, time.monotonic() + 120)
    time.sleep(0.5)
    os.kill(int(victim.data.tags["worker_pid"]), signal.SIGKILL)
    err = finish(proc, 0)
    notes = [line for line in err.splitlines() if "cuda" in line or "absl" in line]
    assert not notes, notes  # TensorFlow's start-up notes, quieted in parent and workers
    check_killed_trial_retried("kill", pg_storage, stores, victim, 6)


def check_killed_trial_retried(study_name: str, storage: str, stores, victim, n: int) -> None:
    """The victim's trial FAIL and tried again with its params, exactly `n` COMPLETE, the
    victim's run KILLED, no run RUNNING, one FINISHED run per completed trial."""
    study = optuna.load_study(study_name=study_name, storage=storage)
    killed_number = int(victim.data.tags["trial_number"])
    assert study.trials[killed_number].state == optuna.trial.TrialState.FAIL
    done = complete(study_name, storage)
    assert len(done) == n
    retried = [t for t in study.trials if t.system_attrs.get("failed_trial") == killed_number]
    assert retried and retried[0].params == study.trials[killed_number].params
    client = MlflowClient(tracking_uri=stores["tracking"])
    assert client.get_run(victim.info.run_id).info.status == "KILLED"
    _, children = runs_of(stores["tracking"], "imdb")
    assert not [c for c in children if c.info.status == "RUNNING"]
    finished = [c for c in children if c.info.status == "FINISHED"]
    assert sorted(int(c.data.tags["trial_number"]) for c in finished) == sorted(
        t.number for t in done
    )


# SIGINT and SIGHUP, and every moment of a search: tests/test_signals.py
@pytest.mark.parametrize("sig", [signal.SIGTERM])
def test_stopped_search_fails_the_trial_and_resumes_to_exactly_n(tiny_data, stores, tmp_path, sig):
    args = search_args(tmp_path, 3)
    proc = cli(args, tiny_data, stores, stores["storage"])
    victim = running_trial_run(stores, time.monotonic() + 120)
    proc.send_signal(sig)
    assert "run the same command again to resume" in finish(proc, 128 + sig)
    study = optuna.load_study(study_name="imdb", storage=stores["storage"])
    number = int(victim.data.tags["trial_number"])
    assert study.trials[number].state == optuna.trial.TrialState.FAIL
    client = MlflowClient(tracking_uri=stores["tracking"])
    assert client.get_run(victim.info.run_id).info.status == "KILLED"
    parents, _ = runs_of(stores["tracking"], "imdb")
    assert [p.info.status for p in parents] == ["KILLED"]
    finish(cli(args, tiny_data, stores, stores["storage"]), 0)
    assert len(complete("imdb", stores["storage"])) == 3
    _, children = runs_of(stores["tracking"], "imdb")
    assert not [c for c in children if c.info.status == "RUNNING"]


def test_database_restarted_mid_study_is_waited_for(tiny_data, stores, pg_bindir, tmp_path):
    """A restart of PostgreSQL (a failover of a few seconds) is ridden through: every trial
    finishes, exit 0, nothing RUNNING, each value the one MLflow logged."""
    from tests.conftest import PostgresServer

    server = PostgresServer(pg_bindir)
    try:
        args = search_args(tmp_path, 3, "--study", "restarted", "--heartbeat", "2")
        proc = cli(args, tiny_data, stores, server.url)
        running_trial_run(stores, time.monotonic() + 120)
        server.stop()
        time.sleep(8)  # longer than the 6 s heartbeat grace: missed beats are not deaths
        server.start()
        err = finish(proc, 0)
        assert "the Optuna storage is unreachable" in err and "the Optuna storage is back" in err
        study = optuna.load_study(study_name="restarted", storage=server.url)
        assert check_values(study, stores) == 3
        assert not [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
        parents, children = runs_of(stores["tracking"], "imdb")
        assert [p.info.status for p in parents] == ["FINISHED"]
        assert not [c for c in children if c.info.status == "RUNNING"]
    finally:
        server.remove()


def test_database_lost_mid_study_then_resumed(tiny_data, stores, pg_bindir, tmp_path):
    from tests.conftest import PostgresServer

    server = PostgresServer(pg_bindir)
    try:
        args = search_args(tmp_path, 3, "--study", "lost", "--store-wait", "3")
        proc = cli(args, tiny_data, stores, server.url)
        running_trial_run(stores, time.monotonic() + 120)
        server.stop()
        err = finish(proc, 2)
        last = err.strip().splitlines()[-1]
        lost = re.fullmatch(
            r"error: lost the Optuna storage \((.+)\); finished trials are saved: "
            r"run the same command again once it is back",
            last,
        )
        assert lost is not None and 0 < len(lost[1]) <= 200, last  # the driver's first line
        assert "s3cret" not in err
        server.start()
        study = optuna.load_study(study_name="lost", storage=server.url)
        saved = check_values(study, stores)  # what finished before the loss, kept whole
        finish(cli(args, tiny_data, stores, server.url), 0)
        study = optuna.load_study(study_name="lost", storage=server.url)
        assert check_values(study, stores) == 3 > saved
    finally:
        server.remove()


def test_twenty_trials_keep_resident_memory_flat(tiny_data, stores, tmp_path):
    import threading

    samples: list[tuple[float, int]] = []
    done = threading.Event()
    page = os.sysconf("SC_PAGE_SIZE")

    def sample() -> None:
        while not done.is_set():
            rss = int(Path("/proc/self/statm").read_text().split()[1]) * page
            samples.append((time.time(), rss))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    cfg = engine.SearchJob(
        dataset="imdb", space=space_file(tmp_path), n_trials=20, pruner="none", timeout=None
    )
    outcome = engine.search(cfg)
    done.set()
    sampler.join()
    assert len(outcome.study.trials) == 20
    first = outcome.study.trials[0].datetime_complete.timestamp()
    after = [rss for t, rss in samples if t >= first]
    growth_mb = (max(after) - after[0]) / 2**20
    assert growth_mb <= 300, f"resident memory grew {growth_mb:.0f} MB over 19 trials"


def _answers(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


# `run_group` registers one handler for SIGTERM, SIGHUP and SIGINT alike: SIGTERM here
@pytest.mark.parametrize("sig", [signal.SIGTERM])
def test_pipeline_ui_stops_its_whole_server(tmp_path, sig):
    from tests.conftest import _free_port

    port = _free_port()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    command = [sys.executable, "-m", "pipeline", "ui", "--port", str(port), "--tracking-uri", uri]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while not _answers(port):
        assert time.monotonic() < deadline and proc.poll() is None, "the UI did not start"
        time.sleep(0.5)
    proc.send_signal(sig)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 15
    while _answers(port) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _answers(port), "the MLflow server kept serving after pipeline ui stopped"


def test_processes_starting_together_on_a_new_store_all_succeed(tmp_path):
    """Four processes open one brand-new SQLite tracking store and Optuna storage at the same
    instant, as two terminals or several workers do; MLflow's migration used to fail in all
    but one of them (alembic's "Online migration expected to match one row")."""
    opening = """
from pipeline.tracking import Tracker
from pipeline.engine import studies
Tracker(sys.argv[2]).experiment("race")
studies.open_storage(sys.argv[3])
"""
    stores = [f"sqlite:///{tmp_path}/mlflow.db", f"sqlite:///{tmp_path}/optuna.db"]
    four_at_once(opening, *stores)


def test_workers_starting_together_on_a_new_postgres_database_all_open_it(pg_storage):
    """Four workers open a brand-new PostgreSQL database as Optuna's storage at the same
    instant, as a cluster's workers do: each would create Optuna's tables, and PostgreSQL
    refused all but one ("duplicate key value violates unique constraint")."""
    four_at_once(
        "from pipeline.engine import studies\nstudies.open_storage(sys.argv[2])", pg_storage
    )
    assert optuna.study.get_all_study_summaries(pg_storage) == []  # the tables are there


def four_at_once(code: str, *args: str) -> None:
    """Run `code` in four processes that start it at the same instant (`sys.argv[2:]` are
    `args`); each must exit 0."""
    waiting = "import sys, time\nwhile time.time() < float(sys.argv[1]):\n    time.sleep(0.001)\n"
    start = str(time.time() + 3)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", waiting + code, start, *args], stderr=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, errors


def test_a_killed_search_leaves_no_parent_running(tiny_data, stores, tmp_path):
    """SIGKILL during a trial, then the same command: the study ends at n trials, and the
    killed invocation's parent run is swept to KILLED along with its trial run."""
    args = search_args(tmp_path, 3, "--study", "s")
    proc = cli(args, tiny_data, stores, stores["storage"])
    victim = running_trial_run(stores, time.monotonic() + 120)
    proc.kill()
    proc.wait(30)
    finish(cli(args, tiny_data, stores, stores["storage"]), 0)
    assert len(complete("s", stores["storage"])) == 3
    parents, children = runs_of(stores["tracking"], "imdb")
    assert sorted(p.info.status for p in parents) == ["FINISHED", "KILLED"]
    killed = next(p for p in parents if p.info.status == "KILLED")
    assert killed.info.run_id == victim.data.tags["mlflow.parentRunId"]
    assert killed.data.tags["error"] == "its invocation was killed or lost"
    assert not [r for r in parents + children if r.info.status == "RUNNING"]
    study = optuna.load_study(study_name="s", storage=stores["storage"])
    number = int(victim.data.tags["trial_number"])
    assert study.trials[number].state == optuna.trial.TrialState.FAIL
    retried = [t for t in study.trials if t.system_attrs.get("failed_trial") == number]
    assert retried and retried[0].params == study.trials[number].params  # queued again
