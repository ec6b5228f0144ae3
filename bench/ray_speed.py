"""`make bench-speed` (last step): a 30-trial IMDB study placed by Ray against the same
study in local worker processes, on this machine.

    python bench/ray_speed.py [--n-trials 30] [--repeats 2]

Each study is `pipeline search imdb --workers 2 --n-trials 30 [--ray local]` in a child
process, into a temporary store, timed from start to exit: Ray's start-up and shutdown
are included. Runs alternate (local, Ray, local, Ray ...) so that a noisy neighbour hits
both. The goal: Ray within 15% of local processes. Writes bench/results/ray.md."""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "ray.md"
GOAL = 0.15


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n-trials", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"local processes": [], "Ray (--ray local)": []}
    finished: dict[str, list[int]] = {k: [] for k in times}
    for _ in range(args.repeats):
        for label, extra in (("local processes", []), ("Ray (--ray local)", ["--ray", "local"])):
            seconds, done = search(args.n_trials, extra)
            times[label].append(seconds)
            finished[label].append(done)
    local, ray = (statistics.median(v) for v in times.values())
    ratio = ray / local - 1
    lines = [
        "# Ray against local worker processes (`make bench-speed`, 2-core CPU)",
        "",
        f"`pipeline search imdb --workers 2 --n-trials {args.n_trials} --seed 0`, "
        f"TensorFlow backend, {platform.machine()}, {os.cpu_count()} cores, IMDB cache "
        "made; seconds from start to exit (Ray's start-up included), alternating runs.",
        "",
        "| placement | seconds (each run) | median | finished trials |",
        "|---|---|---:|---|",
        *(
            f"| {k} | {', '.join(f'{t:.0f}' for t in v)} | {statistics.median(v):.0f} | "
            f"{', '.join(map(str, finished[k]))} |"
            for k, v in times.items()
        ),
        "",
        f"Ray took {ratio:+.0%} against local processes (goal: within {GOAL:.0%}): "
        f"**{'met' if ratio <= GOAL else 'missed'}**.",
        "",
    ]
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))


def search(n_trials: int, extra: list[str]) -> tuple[float, int]:
    work = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    storage = f"sqlite:///{work}/optuna.db"
    env = os.environ | {"MLFLOW_TRACKING_URI": f"sqlite:///{work}/mlflow.db"}
    command = [sys.executable, "-m", "pipeline", "search", "imdb", "--workers", "2"]
    command += ["--n-trials", str(n_trials), "--storage", storage, "--timeout", "3600"]
    command += ["--seed", "0", *extra]
    began = time.perf_counter()
    subprocess.run(command, env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - began
    study = optuna.load_study(study_name="imdb", storage=storage)
    done = sum(t.state.name in ("COMPLETE", "PRUNED") for t in study.trials)
    return seconds, done


if __name__ == "__main__":
    main()
