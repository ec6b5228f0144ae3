"""`make soak`: four workers, a real PostgreSQL and a real MLflow server, and chaos.

Starts PostgreSQL (Optuna's storage) and `mlflow server` (SQLite behind it) on 127.0.0.1,
runs 4 separate `pipeline search` invocations (as on 4 machines) on one study of 60 small
IMDB trials, SIGKILLs a random worker about every 30 s and starts it again, restarts the
database once and the tracking server once, then checks: the study's finished trials,
exactly one FINISHED child run with its whole per-epoch history per finished trial, every
killed trial's run KILLED and its trial retried, no run left RUNNING, no traceback in any
worker's output. Writes bench/results/soak.md; exits 1 when a check fails.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parent.parent
N_TRIALS, N_WORKERS, KILL_EVERY, CHAOS_SECONDS = 60, 4, 25, 420
RESTART_DATABASE_AT, RESTART_TRACKING_AT = 50, 110  # seconds into the study
SPACE = """dataset: imdb
defaults: {n_layers: 1, units: 8, loss: binary_crossentropy, optimizer: adam,
           learning_rate: 0.002, epochs: 3, batch_size: 512}
search:
  units: {type: int, low: 8, high: 32}
  epochs: {type: int, low: 4, high: 8}
"""


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="soak-"))
    work.chmod(0o755)  # the postgres user reaches its data folder inside
    database, tracking = Postgres(work / "pg"), Tracking(work / "mlflow")
    (work / "soak.yaml").write_text(SPACE)
    args = ["search", "imdb", "--space", str(work / "soak.yaml"), "--study", "soak"]
    args += ["--n-trials", str(N_TRIALS), "--heartbeat", "2", "--timeout", "3000"]
    env = os.environ | {"PIPELINE_STORAGE": database.url, "MLFLOW_TRACKING_URI": tracking.url}
    workers = [Worker(i, args, env, work) for i in range(N_WORKERS)]
    events = chaos(workers, database, tracking)
    for w in workers:  # let every worker finish its last invocation
        while not w.done():
            w.wait_or_restart()
    w = Worker(N_WORKERS, args, env, work)  # one more invocation sweeps what the dead left
    w.proc.wait()
    report = check(database.url, tracking.url, workers + [w], events)
    tracking.stop()
    database.stop()
    (ROOT / "bench" / "results" / "soak.md").write_text(report["text"])
    print(report["text"])
    sys.exit(0 if report["ok"] else 1)


def chaos(workers: list, database, tracking) -> dict:
    """Kill a random worker every KILL_EVERY s; restart the database, then the server."""
    start, kills, restarts = time.monotonic(), 0, []
    plan = {RESTART_DATABASE_AT: database, RESTART_TRACKING_AT: tracking}
    while time.monotonic() - start < CHAOS_SECONDS and not all(w.done() for w in workers):
        time.sleep(KILL_EVERY * random.uniform(0.7, 1.3))
        victim = random.choice([w for w in workers if w.proc.poll() is None] or workers)
        if victim.proc.poll() is None:
            victim.proc.kill()
            kills += 1
        for w in workers:
            w.wait_or_restart(block=False)
        elapsed = time.monotonic() - start
        for at, server in list(plan.items()):
            if elapsed >= at:
                server.restart()
                restarts.append(type(server).__name__)
                del plan[at]
    return {"kills": kills, "restarts": restarts, "seconds": time.monotonic() - start}


class Worker:
    """One `pipeline search` invocation, started again (a new process) when it dies."""

    def __init__(self, index: int, args: list[str], env: dict, work: Path) -> None:
        self.index, self.args, self.env, self.work, self.runs = index, args, env, work, 0
        self.start()

    def start(self) -> None:
        self.runs += 1
        log = open(self.work / f"worker-{self.index}-{self.runs}.log", "w")  # noqa: SIM115
        command = [sys.executable, "-m", "pipeline", *self.args]
        self.proc = subprocess.Popen(command, env=self.env, cwd=ROOT, stdout=log, stderr=log)

    def done(self) -> bool:
        return self.proc.poll() == 0

    def wait_or_restart(self, block: bool = True) -> None:
        code = self.proc.wait() if block else self.proc.poll()
        if code is not None and code != 0:
            self.start()


class Postgres:
    def __init__(self, folder: Path) -> None:
        bindir = Path(shutil.which("initdb") or "").parent
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        bindir = found[-1].parent if found else bindir
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        folder.mkdir(parents=True)
        if self.as_user:
            shutil.chown(folder, "postgres")
        self.port = free_port()
        self._run(
            str(bindir / "initdb"), "-D", str(folder / "data"), "-U", "postgres", "-A", "trust"
        )
        self.ctl = [
            str(bindir / "pg_ctl"),
            "-D",
            str(folder / "data"),
            "-w",
            "-l",
            str(folder / "log"),
        ]
        self.options = f"-h 127.0.0.1 -p {self.port} -k {folder} -c max_connections=200"
        self._run(*self.ctl, "-o", self.options, "start")
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True)

    def restart(self) -> None:
        self._run(*self.ctl, "-m", "fast", "-o", self.options, "restart")

    def stop(self) -> None:
        self._run(*self.ctl, "-m", "immediate", "stop")


class Tracking:
    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True)
        self.port, self.folder = free_port(), folder
        self.url = f"http://127.0.0.1:{self.port}"
        self.start()

    def start(self) -> None:
        command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--workers", "2"]
        command += ["--backend-store-uri", f"sqlite:///{self.folder}/mlflow.db"]
        command += ["--artifacts-destination", str(self.folder / "artifacts")]
        log = open(self.folder / "server.log", "a")  # noqa: SIM115
        self.proc = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 120
        while not answers(self.port):
            if time.monotonic() > deadline:
                raise RuntimeError("mlflow server did not start")
            time.sleep(0.5)

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(30)

    def restart(self) -> None:
        self.stop()
        self.start()


def check(storage: str, tracking: str, workers: list, events: dict) -> dict:
    study = optuna.load_study(study_name="soak", storage=storage)
    states = [t.state for t in study.trials]
    finished = [
        t
        for t in study.trials
        if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    ]
    failed = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    client = MlflowClient(tracking)
    experiment = client.get_experiment_by_name("imdb")
    runs = client.search_runs([experiment.experiment_id], max_results=5000)
    children = [r for r in runs if "trial_number" in r.data.tags]
    parents = [r for r in runs if "trial_number" not in r.data.tags]
    by_number: dict[int, list] = {}
    for run in children:
        by_number.setdefault(int(run.data.tags["trial_number"]), []).append(run)
    one_each = all(
        sum(r.info.status == "FINISHED" for r in by_number.get(t.number, [])) == 1 for t in finished
    )
    histories = all(
        len(client.get_metric_history(r.info.run_id, "val_accuracy"))
        == int(r.data.tags["epochs_run"])
        for t in finished
        for r in by_number.get(t.number, [])
        if r.info.status == "FINISHED"
    )
    killed = [r for r in children if r.info.status == "KILLED"]
    retried = {t.system_attrs.get("failed_trial") for t in study.trials} - {None}
    running = [r for r in runs if r.info.status == "RUNNING"]
    logs = sorted(Path(workers[0].work).glob("worker-*.log"))
    tracebacks = [p.name for p in logs if "Traceback" in p.read_text()]
    checks = {
        f"{N_TRIALS} finished trials (at most {N_WORKERS} extra)": N_TRIALS
        <= len(finished)
        <= N_TRIALS + N_WORKERS,
        "one FINISHED run per finished trial": one_each,
        "whole per-epoch history in each": histories,
        "every failed trial retried or its run KILLED": all(
            t.number in retried
            or any(r.info.status in ("KILLED", "FAILED") for r in by_number.get(t.number, []))
            for t in failed
        ),
        "no run RUNNING (parents included)": not running,
        "no traceback in any worker's output": not tracebacks,
    }
    counts = {
        "wall (chaos) s": round(events["seconds"]),
        "kills": events["kills"],
        "restarts": ", ".join(events["restarts"]),
        "worker invocations": sum(w.runs for w in workers),
        "trials": len(states),
        "finished": len(finished),
        "failed": len(failed),
        "runs FINISHED / KILLED / FAILED / RUNNING": " / ".join(
            str(sum(r.info.status == s for r in runs))
            for s in ("FINISHED", "KILLED", "FAILED", "RUNNING")
        ),
        "parent runs": len(parents),
        "killed trial runs": len(killed),
        "logs with a traceback": ", ".join(tracebacks) or "none",
    }
    lines = ["# Soak (`make soak`, 2-core CPU)", "", "| measure | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in counts.items()]
    lines += ["", "| check | |", "|---|---|"]
    lines += [f"| {k} | {'passed' if v else '**FAILED**'} |" for k, v in checks.items()]
    return {"ok": all(checks.values()), "text": "\n".join(lines) + "\n"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


if __name__ == "__main__":
    main()
