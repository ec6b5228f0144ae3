"""`make bench-custom`: a model of the user's own (examples/imdb_cnn.py, a Conv1D over token
ids) searched on real IMDB reviews, beside the seeds' MLP searched the same way.

Each search is `pipeline search imdb --n-trials 20` in a child process, into a temporary
store: wall time, the child's peak resident memory (getrusage), and the best trial's
validation and test accuracy against the recipe's (the space's defaults, trial 0).
Writes bench/results/custom_model.md.
"""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import psutil

from pipeline import trial_record

ROOT = Path(__file__).resolve().parent.parent
SEARCHES = {"seeds' MLP (imdb.yaml)": "imdb", "Conv1D of your own (imdb-cnn.yaml)": "imdb-cnn"}
N_TRIALS = 20


def main() -> None:
    rows = [_search(label, space) for label, space in SEARCHES.items()]
    lines = [
        "# Your own model (`make bench-custom`, 2-core CPU)",
        "",
        f"`pipeline search imdb --space SPACE --n-trials {N_TRIALS}`, TensorFlow backend, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; the IMDB "
        "cache already made. Peak memory: the search process's resident set.",
        "",
        "| search | best val | best test | recipe test | trials (complete/pruned/failed) "
        "| seconds | peak MiB |",
        "|---|---:|---:|---:|---|---:|---:|",
        *rows,
        "",
    ]
    out = ROOT / "bench" / "results" / "custom_model.md"
    out.write_text("\n".join(lines))
    print("\n".join(lines))


def _search(label: str, space: str) -> str:
    work = Path(tempfile.mkdtemp(prefix="bench-custom-"))
    storage = f"sqlite:///{work}/optuna.db"
    env = os.environ | {"MLFLOW_TRACKING_URI": f"sqlite:///{work}/mlflow.db"}
    command = [sys.executable, "-m", "pipeline", "search", "imdb", "--space", space]
    command += ["--n-trials", str(N_TRIALS), "--timeout", "3600", "--storage", storage]
    began = time.perf_counter()
    child = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    peak = 0.0
    while child.poll() is None:  # its resident set, sampled (getrusage keeps one max for all)
        with contextlib.suppress(psutil.Error):
            peak = max(peak, psutil.Process(child.pid).memory_info().rss / 2**20)
        time.sleep(0.5)
    if child.returncode:
        raise SystemExit(f"{' '.join(command)} failed ({child.returncode})")
    seconds = time.perf_counter() - began
    study = optuna.load_study(study_name="imdb", storage=storage)
    states = [t.state.name for t in study.trials]
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    best = max(complete, key=lambda t: t.value)
    recipe = trial_record.read(study.trials[0]).metrics.get("test_accuracy", float("nan"))
    counts = "/".join(str(states.count(s)) for s in ("COMPLETE", "PRUNED", "FAIL"))
    return (
        f"| {label} | {best.value:.4f} | {trial_record.read(best).metrics['test_accuracy']:.4f} | "
        f"{recipe:.4f} | {counts} | {seconds:.0f} | {peak:.0f} |"
    )


if __name__ == "__main__":
    main()
