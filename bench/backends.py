"""The seed recipe's IMDB network (Dense 16-16-1, 4 epochs, rmsprop, batch 512) on each Keras
backend on this machine's CPU: test accuracy over seeds, and seconds a trial.

    python bench/backends.py [--seeds 3] [--backends tensorflow,jax,torch]

Keras picks its backend once a process, so each backend runs in a process of its own, from
IMDB's cached bags of words. Writes bench/results/backends.md (and prints it)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "backends.md"
RECIPE = {
    "units": [16, 16],
    "activation": "relu",
    "loss": "binary_crossentropy",
    "optimizer": "rmsprop",
    "learning_rate": 0.001,
    "epochs": 4,
    "batch_size": 512,
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a child process: this backend
    args = parser.parse_args()
    if args.one:
        print(json.dumps(train_on(args.one, args.seeds)))
        return
    from pipeline import datasets

    datasets.load_dataset("imdb")  # the cache, built once, outside every timing
    rows = []
    for name in args.backends.split(","):
        if importlib.util.find_spec(name) is None:
            print(f"{name}: not installed, skipped", file=sys.stderr)
            continue
        child = [sys.executable, __file__, "--one", name, "--seeds", str(args.seeds)]
        done = subprocess.run(child, capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    text = report(rows, args.seeds)
    RESULTS.write_text(text)
    print(text)


def train_on(name: str, seeds: int) -> dict:
    """The recipe trained `seeds` times on backend `name`, in this (child) process."""
    from pipeline import backends

    backends.start(name)
    from pipeline import datasets
    from pipeline.training import train_and_evaluate

    data = datasets.load_dataset("imdb")
    runs = [train_and_evaluate(RECIPE, data, seed=seed) for seed in range(seeds)]
    return {
        "backend": name,
        "device": backends.devices(),
        "tensorflow_imported": "tensorflow" in sys.modules,
        "test_accuracy": [r.test["test_accuracy"] for r in runs],
        "seconds": [r.seconds for r in runs],
    }


def report(rows: list[dict], seeds: int) -> str:
    base = next((r for r in rows if r["backend"] == "tensorflow"), rows[0])
    reference = statistics.mean(base["test_accuracy"])
    lines = [
        "# The seed recipe on each Keras backend",
        "",
        f"IMDB, Dense 16-16-1, 4 epochs, rmsprop, batch 512; {seeds} seeds each; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"`python bench/backends.py`. Seconds: fit, validation each epoch and test "
        "(the first trial also traces or compiles its steps).",
        "",
        "| backend | device | test accuracy (mean ± std) | vs TensorFlow (points) "
        "| per seed | seconds a trial (first; then mean) | TensorFlow imported |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        acc = r["test_accuracy"]
        mean, std = statistics.mean(acc), statistics.stdev(acc) if len(acc) > 1 else 0.0
        later = r["seconds"][1:] or r["seconds"]
        lines.append(
            f"| {r['backend']} | {r['device']} | {mean:.4f} ± {std:.4f} "
            f"| {100 * (mean - reference):+.2f} | {', '.join(f'{a:.4f}' for a in acc)} "
            f"| {r['seconds'][0]:.1f}; {statistics.mean(later):.1f} "
            f"| {'yes' if r['tensorflow_imported'] else 'no'} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
