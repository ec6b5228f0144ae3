"""`make bench-gpu`: IMDB searches on the JAX and PyTorch backends, on a GPU when there is
one, as the lent machine runs them (`make gpu-kit` first; the device tool's README):

    python bench/gpu.py --out DIR            # on the GPU machine: DIR/gpu.md
    python bench/gpu.py --cpu                # here: bench/results/gpu_cpu.json, the baseline

Each search: 30 trials (`--trials`) of the network's settings on the recipe's bags of words
(the cache the kit carries; no TensorFlow), then JAX with 2 and 4 worker processes sharing
the one GPU (JAX preallocation off). Reports trials a minute, seconds an epoch, the best
trial's test accuracy and the GPU's peak memory in use (nvidia-smi, polled)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
SPACE = """
dataset: imdb
description: the network's settings on the recipe's 10,000-word multi-hot reviews
defaults: {output_mode: multi_hot, n_layers: 2, units: 16, activation: relu, dropout: 0.0,
  loss: binary_crossentropy, optimizer: rmsprop, learning_rate: 0.001, epochs: 4,
  batch_size: 512}
search:
  n_layers: {type: int, low: 1, high: 3}
  units: {type: int, low: 8, high: 64, log: true, per_layer: true}
  activation: {type: categorical, choices: [relu, tanh]}
  learning_rate: {type: float, low: 3.0e-4, high: 3.0e-3, log: true}
  epochs: {type: int, low: 2, high: 10}
  batch_size: {type: categorical, choices: [256, 512]}
  dropout: {type: float, low: 0.0, high: 0.6}
  early_stopping_patience: 2
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--backends", default="jax,torch")
    parser.add_argument("--workers", default="2,4", help="JAX searches with these workers")
    parser.add_argument("--cpu", action="store_true", help="the CPU baseline, here")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-gpu-"))
    (work / "space.yaml").write_text(SPACE)
    runs = [(b, 1) for b in args.backends.split(",")]
    runs += [("jax", int(w)) for w in args.workers.split(",") if w and not args.cpu]
    rows = [search(work, backend, workers, args.trials) for backend, workers in runs]
    args.out.mkdir(parents=True, exist_ok=True)
    if args.cpu:
        (args.out / "gpu_cpu.json").write_text(json.dumps(rows, indent=1))
        print(json.dumps(rows, indent=1))
        return
    baseline = RESULTS / "gpu_cpu.json"
    cpu = json.loads(baseline.read_text()) if baseline.is_file() else []
    text = report(rows, cpu, args.trials)
    (args.out / "gpu.md").write_text(text)
    print(text)


def search(work: Path, backend: str, workers: int, trials: int) -> dict:
    study = f"{backend}-w{workers}"
    command = [sys.executable, "-m", "pipeline", "search", "imdb", "--backend", backend]
    command += ["--space", str(work / "space.yaml"), "--study", study, "--timeout", "420"]
    command += ["--n-trials", str(trials), "--workers", str(workers)]
    command += ["--storage", f"sqlite:///{work}/optuna.db"]
    command += ["--tracking-uri", f"sqlite:///{work}/mlflow.db"]
    memory = GpuMemory()
    began = time.perf_counter()
    with memory:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        print(done.stderr[-4000:], file=sys.stderr)
    return {
        "backend": backend,
        "workers": workers,
        "device": device(backend),
        "seconds": round(seconds, 1),
        "peak_gpu_mib": memory.peak,
        **figures(work, study),
    }


def figures(work: Path, study_name: str) -> dict:
    import optuna

    from pipeline import trial_record

    study = optuna.load_study(study_name=study_name, storage=f"sqlite:///{work}/optuna.db")
    done = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    if not done:
        return {"finished": 0}
    span = max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)
    records = [trial_record.read(t) for t in done]
    epochs = sum(r.epochs_run or 0 for r in records)
    trained = sum(r.seconds or 0.0 for r in records)
    complete = [t for t in done if t.state.name == "COMPLETE"]
    best = max(complete, key=lambda t: t.value) if complete else None
    return {
        "finished": len(done),
        "trials_a_minute": round(len(done) / (span.total_seconds() / 60), 1),
        "seconds_an_epoch": round(trained / epochs, 3) if epochs else None,
        "median_trial_seconds": statistics.median(r.seconds or 0 for r in records),
        "best_val_accuracy": None if best is None else round(best.value, 4),
        "best_test_accuracy": None
        if best is None
        else trial_record.read(best).metrics.get("test_accuracy"),
    }


def device(backend: str) -> str:
    code = f"from pipeline import backends; backends.start('{backend}'); print(backends.devices())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return done.stdout.strip() or "?"


class GpuMemory:
    """The peak GPU memory in use while a search runs (nvidia-smi every half second)."""

    def __init__(self) -> None:
        self.peak: int | None = None
        self._stop = threading.Event()

    def __enter__(self):
        if shutil.which("nvidia-smi"):
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()

    def _poll(self) -> None:
        query = ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"]
        while not self._stop.wait(0.5):
            out = subprocess.run(query, capture_output=True, text=True).stdout.split()
            used = sum(int(v) for v in out if v.isdigit())
            self.peak = max(self.peak or 0, used)


def report(rows: list[dict], cpu: list[dict], trials: int) -> str:
    lines = [
        "# IMDB searches on a GPU: JAX and PyTorch backends",
        "",
        f"{trials} trials each of `bench/gpu.py`'s space (the network's settings on the recipe's",
        "bags of words, carried as the cache by `make gpu-kit`), `python bench/gpu.py --out`.",
        f"Machine: {os.uname().nodename}; the CPU rows come from `bench/results/gpu_cpu.json`",
        "(`python bench/gpu.py --cpu` on the project's 2-core CPU machine).",
        "",
        "| where | backend | workers | device | finished | trials a minute | s an epoch "
        "| median trial s | best val acc | its test acc | peak GPU MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for where, group in (("GPU machine", rows), ("2-core CPU", cpu)):
        for r in group:
            lines.append(
                f"| {where} | {r['backend']} | {r['workers']} | {r['device']} "
                f"| {r.get('finished')} | {r.get('trials_a_minute')} "
                f"| {r.get('seconds_an_epoch')} | {r.get('median_trial_seconds')} "
                f"| {r.get('best_val_accuracy')} | {r.get('best_test_accuracy')} "
                f"| {r.get('peak_gpu_mib') or ''} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
