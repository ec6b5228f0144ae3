"""SIGINT, SIGTERM and SIGHUP at every moment of `search` (1 and 2 workers) and `train`:
one line, exit code 128 + the signal, and nothing RUNNING, with no rerun; a rerun of the
search completes its study and registers its model.

The three signals reach one handler (`stopping.install`, checked for each signal below),
so each moment is taken through with one of them, a different one at each moment: every
signal meets each command, with one worker and with two.

The commands run in this process (typer's runner) and real signals are sent to it
(`os.kill` of our own pid, which the command's handlers receive as from outside). The
moment is made exact where a race would make the test flaky: a wrapped step of the
command sends the signal as it starts (data loaded at start-up, the parent's record after
the last trial); mid-trial, a thread sends it once a trial run is RUNNING."""

from __future__ import annotations

import os
import re
import signal
import threading
import time

import optuna
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from pipeline import stopping
from pipeline.cli import app
from tests.conftest import TINY_SPACE, space_file

pytestmark = pytest.mark.slow
SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
SLOW_SPACE = {**TINY_SPACE, "defaults": {**TINY_SPACE["defaults"], "epochs": 15}}  # mid-trial
FAST_SPACE = {**TINY_SPACE, "defaults": {**TINY_SPACE["defaults"], "epochs": 2}}
RESUME = re.compile(r"interrupted \(\d/2 trials done[^)]*\); run the same command again")


@pytest.fixture(autouse=True)
def own_handlers():
    """The commands install their handlers in this process: put pytest's back after."""
    saved = {s: signal.getsignal(s) for s in stopping.SIGNALS}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)
    stopping.reset()


def send(sig: int) -> None:
    os.kill(os.getpid(), sig)


def when_running(stores, sig: int, then: float | None = None) -> threading.Thread:
    """Send `sig` to this process once a trial or train run is RUNNING (and again `then`
    seconds later: a second signal during the shutdown of the first)."""

    def watch() -> None:
        client = MlflowClient(tracking_uri=stores["tracking"])
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            for exp in client.search_experiments():
                runs = client.search_runs([exp.experiment_id], "attributes.status = 'RUNNING'")
                if any(
                    "trial_number" in r.data.tags or r.data.tags.get("kind") == "train"
                    for r in runs
                ):
                    time.sleep(0.3)  # inside its training
                    send(sig)
                    if then is not None:
                        time.sleep(then)
                        send(sig)
                    return
            time.sleep(0.1)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def _training(tags: dict) -> bool:
    return "trial_number" in tags or tags.get("kind") == "train"


def signal_as_called(monkeypatch, owner, name: str, sig: int, times: int = 1) -> list:
    """`owner.name` sends `sig` as it starts (its first `times` calls); returns its calls."""
    original, calls = getattr(owner, name), []

    def wrapped(*args, **kwargs):
        calls.append(1)
        if len(calls) <= times:
            send(sig)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapped)
    return calls


def nothing_running(stores, study: str | None) -> None:
    if study is not None:
        try:
            loaded = optuna.load_study(study_name=study, storage=stores["storage"])
        except KeyError:  # stopped before the study was created
            loaded = None
        if loaded is not None:
            running = [t.number for t in loaded.trials if t.state.name == "RUNNING"]
            assert running == [], f"trials left RUNNING: {running}"
    client = MlflowClient(tracking_uri=stores["tracking"])
    for exp in client.search_experiments():
        runs = client.search_runs([exp.experiment_id], "attributes.status = 'RUNNING'")
        assert runs == [], [r.info.run_name for r in runs]


def one_line(result, sig: int, pattern: re.Pattern | str) -> None:
    assert result.exit_code == 128 + sig, (result.exit_code, result.stderr, result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr
    assert re.search(pattern, lines[-1]), lines[-1]


def search_args(tmp_path, workers: int, slow: bool = False) -> list[str]:
    """Trials long enough for a signal to land inside one (`slow`), or short."""
    space = space_file(tmp_path, SLOW_SPACE if slow else FAST_SPACE)
    return [
        "search", "imdb", "--space", str(space), "--n-trials", "2", "--pruner", "none",
        "--study", "s", "--workers", str(workers), "--heartbeat", "2",
    ]  # fmt: skip


def rerun_completes(tmp_path, stores, slow: bool = False) -> None:
    result = CliRunner().invoke(app, search_args(tmp_path, 1, slow))
    assert result.exit_code == 0, result.stderr
    study = optuna.load_study(study_name="s", storage=stores["storage"])
    assert len([t for t in study.trials if t.state.name == "COMPLETE"]) == 2
    assert "Best model: models:/s/" in result.stdout
    client = MlflowClient(tracking_uri=stores["tracking"])
    assert client.get_model_version_by_alias("s", "champion").version
    nothing_running(stores, "s")


# --- search, with 1 and 2 workers ---------------------------------------------------------


@pytest.mark.parametrize("sig", SIGNALS)
def test_each_signal_is_a_stop_request_and_its_exit_code(sig):
    """SIGINT, SIGTERM and SIGHUP alike: the first a request to stop, its code 128 + it."""
    stopping.install()
    assert not stopping.requested()
    send(sig)
    assert stopping.requested() and stopping.exit_code() == 128 + sig


# Each moment with one signal and one worker, and another signal with two workers (their
# parent's path is the one worker's; spawning them costs ~20 s a case).
def one_worker_then_two(first: signal.Signals, then: signal.Signals) -> list:
    return [(first, 1), (then, 2)]


@pytest.mark.parametrize(("sig", "workers"), one_worker_then_two(signal.SIGHUP, signal.SIGINT))
def test_search_at_start_up(tiny_data, stores, tmp_path, monkeypatch, sig, workers):
    import pipeline.datasets

    signal_as_called(monkeypatch, pipeline.datasets, "load_dataset", sig)
    result = CliRunner().invoke(app, search_args(tmp_path, workers))
    one_line(result, sig, r"^interrupted before anything was written$")
    nothing_running(stores, "s")
    parents = MlflowClient(tracking_uri=stores["tracking"]).search_runs(["1"])
    assert parents == []  # stopped before it opened a run
    rerun_completes(tmp_path, stores)


@pytest.mark.parametrize(("sig", "workers"), one_worker_then_two(signal.SIGINT, signal.SIGTERM))
def test_search_mid_trial(tiny_data, stores, tmp_path, sig, workers):
    when_running(stores, sig)
    result = CliRunner().invoke(app, search_args(tmp_path, workers, slow=True))
    one_line(result, sig, RESUME)
    nothing_running(stores, "s")
    study = optuna.load_study(study_name="s", storage=stores["storage"])
    assert "FAIL" in [t.state.name for t in study.trials]  # the trial it stopped
    killed = MlflowClient(tracking_uri=stores["tracking"]).search_runs(
        ["1"], "attributes.status = 'KILLED'"
    )
    assert {r.info.run_name for r in killed} >= {"s-search"}
    rerun_completes(tmp_path, stores, slow=True)


@pytest.mark.parametrize(("sig", "workers"), one_worker_then_two(signal.SIGTERM, signal.SIGHUP))
def test_search_after_the_last_trial(tiny_data, stores, tmp_path, monkeypatch, sig, workers):
    """The first signal as the parent records the finished study: the best model is still
    published, the parent ends KILLED."""
    from pipeline.engine import runner

    signal_as_called(monkeypatch, runner, "record_parent", sig)
    result = CliRunner().invoke(app, search_args(tmp_path, workers))
    one_line(result, sig, r"interrupted \(2/2 trials done; the best model so far is models:/s/1\)")
    nothing_running(stores, "s")
    rerun_completes(tmp_path, stores)


@pytest.mark.parametrize(("sig", "workers"), one_worker_then_two(signal.SIGHUP, signal.SIGTERM))
def test_search_second_signal_during_shutdown(
    tiny_data, stores, tmp_path, monkeypatch, sig, workers
):
    """A first signal mid-trial, a second while the first is being handled: everything
    still open is closed KILLED at once, and nothing is published."""
    from pipeline.engine import runner

    when_running(stores, sig, then=0.5 if workers > 1 else None)
    if workers == 1:  # the second as the parent starts its record
        signal_as_called(monkeypatch, runner, "record_parent", sig)
    began = time.monotonic()
    result = CliRunner().invoke(app, search_args(tmp_path, workers, slow=True))
    one_line(result, sig, RESUME)
    assert time.monotonic() - began < 60
    nothing_running(stores, "s")
    rerun_completes(tmp_path, stores, slow=True)


# --- train --------------------------------------------------------------------------------


def train_args(tmp_path) -> list[str]:
    return ["train", "imdb", "--space", str(space_file(tmp_path, SLOW_SPACE))]


def train_runs(stores) -> list:
    client = MlflowClient(tracking_uri=stores["tracking"])
    exp = client.get_experiment_by_name("imdb")
    return [] if exp is None else client.search_runs([exp.experiment_id])


@pytest.mark.parametrize("sig", [signal.SIGHUP])
def test_train_at_start_up(tiny_data, stores, tmp_path, monkeypatch, sig):
    import pipeline.datasets

    signal_as_called(monkeypatch, pipeline.datasets, "load_dataset", sig)
    result = CliRunner().invoke(app, train_args(tmp_path))
    one_line(result, sig, r"^interrupted before anything was written$")
    assert train_runs(stores) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM])  # a supervisor stopping a long run
def test_train_mid_training(tiny_data, stores, tmp_path, sig):
    when_running(stores, sig)
    result = CliRunner().invoke(app, train_args(tmp_path))
    one_line(result, sig, r"^interrupted; MLflow run \w+ is KILLED$")
    assert [r.info.status for r in train_runs(stores)] == ["KILLED"]
    nothing_running(stores, None)


@pytest.mark.parametrize("sig", [signal.SIGINT])
def test_train_after_training(tiny_data, stores, tmp_path, monkeypatch, sig):
    """Training is over: its record is written whole, then the command stops."""
    from pipeline.engine import train_run

    signal_as_called(monkeypatch, train_run, "write_trial_files", sig)
    result = CliRunner().invoke(app, train_args(tmp_path))
    one_line(result, sig, r"^interrupted as training ended; MLflow run \w+ is FINISHED$")
    runs = train_runs(stores)
    assert [r.info.status for r in runs] == ["FINISHED"]
    client = MlflowClient(tracking_uri=stores["tracking"])
    assert "model.keras" in {a.path for a in client.list_artifacts(runs[0].info.run_id)}


@pytest.mark.parametrize("sig", [signal.SIGTERM])
def test_train_second_signal_during_shutdown(tiny_data, stores, tmp_path, monkeypatch, sig):
    """The second signal lands while the run is being closed: it is closed all the same."""
    from pipeline import tracking

    when_running(stores, sig)
    signal_as_called(monkeypatch, tracking.Tracker, "fail", sig)
    result = CliRunner().invoke(app, train_args(tmp_path))
    one_line(result, sig, r"^interrupted; MLflow run \w+ is KILLED$")
    assert [r.info.status for r in train_runs(stores)] == ["KILLED"]


@pytest.mark.parametrize("sig", [signal.SIGINT])
def test_two_signals_just_after_the_last_trial(tiny_data, stores, tmp_path, monkeypatch, sig):
    """Two Ctrl-C as the search records its finished study: the parent ends KILLED, not
    RUNNING, and the model it could not publish is published by the next invocation."""
    from pipeline.engine import runner

    signal_as_called(monkeypatch, runner, "record_parent", sig)
    signal_as_called(monkeypatch, runner, "publish_best", sig)
    result = CliRunner().invoke(app, search_args(tmp_path, 1))
    one_line(result, sig, r"interrupted \(2/2 trials done\)")
    nothing_running(stores, "s")
    client = MlflowClient(tracking_uri=stores["tracking"])
    assert client.search_registered_models() == []  # the second signal stopped publishing
    rerun_completes(tmp_path, stores)


# --- the real command, signalled from outside as it starts ----------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_the_command_signalled_as_it_starts(tiny_data, stores, tmp_path, sig):
    """`pipeline search` signalled 2 s after it started, as it loads, plans and reads its
    data: one line, 128 + the signal, no run (a search that went on would leave some); no
    traceback."""
    from tests.test_faults import cli

    proc = cli(search_args(tmp_path, 1, slow=True), tiny_data, stores, stores["storage"])
    time.sleep(2.0)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, err[-2000:]
    assert "Traceback" not in err
    assert re.search(r"^interrupted", err.strip().splitlines()[-1]), err[-500:]
    nothing_running(stores, "s")
    client = MlflowClient(tracking_uri=stores["tracking"])
    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    assert runs == []


def test_a_notebook_interrupt_closes_the_search(tiny_data, stores, tmp_path, monkeypatch):
    """`pipeline.search` from a notebook, where Python's own handler turns Ctrl-C into a
    KeyboardInterrupt inside a trial: `Interrupted`, with nothing left RUNNING."""
    import pipeline
    from pipeline.engine import objective
    from pipeline.errors import Interrupted

    def interrupting(trial, metric):
        def on_epoch(epoch, logs):
            raise KeyboardInterrupt

        return on_epoch

    monkeypatch.setattr(objective, "pruning_hook", interrupting)
    with pytest.raises(Interrupted, match=r"interrupted \(0/2 trials done\)"):
        pipeline.search("imdb", space=space_file(tmp_path, FAST_SPACE), n_trials=2, study="s")
    nothing_running(stores, "s")
    parents = MlflowClient(tracking_uri=stores["tracking"]).search_runs(["1"])
    assert [r.info.status for r in parents if "trial_number" not in r.data.tags] == ["KILLED"]


def test_a_second_signal_while_the_model_is_logged_leaves_its_trial_run_finished(
    tiny_data, stores, tmp_path, monkeypatch
):
    """The model is logged on the best trial's finished run: a stop broken off inside that
    (here a second Ctrl-C; or the process killed) neither reopens nor fails that run."""
    import mlflow.pyfunc

    from pipeline.engine import runner

    signal_as_called(monkeypatch, runner, "record_parent", signal.SIGINT)
    saving = signal_as_called(monkeypatch, mlflow.pyfunc, "save_model", signal.SIGINT)
    result = CliRunner().invoke(app, search_args(tmp_path, 1))
    one_line(result, signal.SIGINT, r"interrupted \(2/2 trials done")
    assert saving  # the second signal came as the model was being written
    nothing_running(stores, "s")
    trial_runs = [
        run
        for run in MlflowClient(tracking_uri=stores["tracking"]).search_runs(["1"])
        if "trial_number" in run.data.tags
    ]
    assert sorted(r.info.status for r in trial_runs) == ["FINISHED", "FINISHED"]
