"""`make bench-speed`: the targets of issue #16, measured side by side in one run.

- floor ratio: a seed-recipe trial of a running study (Optuna's start to complete, process
  start excluded) against a minimal TensorFlow loop over pre-built sparse batches;
- the blog-imdb table, whole commands: one worker and one seed, then 3 seeds and 2 workers,
  against the seed recipe as a notebook user runs it (one process per configuration);
- peak resident memory of those commands (the whole process tree);
- tracking: the MLflow and Optuna calls of a study's trials, timed one by one
  (bench/bookkeeping.py), as a share of the trials' wall time;
- devices: seed-recipe trials of a study, with worker processes sharing the device, on the
  CPU and, when TensorFlow sees one, on the GPU: per-epoch time and trials per minute.

Writes bench/results/latest.json and latest.md (with a profile). Absolute seconds vary
between machines; the ratios are the claim. Needs PIPELINE_DATA_DIR with the real IMDB
archive. About 9 minutes on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml
from speed_report import FLOOR_RECIPE, SEED_ROWS, blog_rows, render

from pipeline import trial_record

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


# --- measuring a process tree ----------------------------------------------------------


def _tree_memory(root: int) -> tuple[int, int]:
    """Resident bytes (RSS) of `root` and all its descendants, from /proc; and their
    proportional share (PSS), which counts pages that processes share (TensorFlow's
    libraries, about 420 MB a process) once instead of once per process."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            rss[int(entry.name)] = int(stat[21]) * os.sysconf("SC_PAGE_SIZE")
            children.setdefault(int(stat[1]), []).append(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue
    total, pss, todo = 0, 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        pss += _pss(pid)
        todo += children.get(pid, [])
    return total, pss


def _pss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def measure(cmd: list[str], env: dict | None = None) -> dict:
    """Wall seconds and peak resident memory of the whole process tree of `cmd`."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
    )
    peak = [0, 0]

    def sample() -> None:
        while proc.poll() is None:
            rss, pss = _tree_memory(proc.pid)
            peak[:] = max(peak[0], rss), max(peak[1], pss)
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{err[-3000:]}")
    return {
        "wall_s": time.perf_counter() - start,
        "peak_rss_mb": peak[0] / 2**20,
        "peak_pss_mb": peak[1] / 2**20,
        "stdout": out,
    }


# --- the pieces ---------------------------------------------------------------------------


def seed_recipe(rows: list[int]) -> list[dict]:
    """The seeds' code, one process per configuration, as a notebook user runs it."""
    results = []
    for index in rows:
        row = blog_rows()[index - 1]
        cmd = [
            sys.executable,
            "bench/seed_recipe.py",
            "--units",
            ",".join(map(str, row["units"])),
            "--loss",
            row["loss"],
            "--activation",
            row.get("activation", "relu"),
            "--epochs",
            str(row["epochs"]),
        ]
        m = measure(cmd)
        figures = json.loads(m.pop("stdout").strip().splitlines()[-1])
        results.append({"row": index, **m, **figures})
        print(
            f"  seed recipe row {index}: {m['wall_s']:.1f} s, {m['peak_rss_mb']:.0f} MB, "
            f"test acc {figures['test_accuracy']:.4f}",
            flush=True,
        )
    return results


def project(args: list[str], stores: Path, cache: Path, env: dict | None = None) -> dict:
    stores_env = {
        "MLFLOW_TRACKING_URI": f"sqlite:///{stores}/mlflow.db",
        "PIPELINE_STORAGE": f"sqlite:///{stores}/optuna.db",
        "PIPELINE_CACHE_DIR": str(cache),
    }
    return measure([sys.executable, "-m", "pipeline", *args], stores_env | (env or {}))


def cache_imdb(cache: Path) -> dict:
    """The one-time cost a machine's first command pays: IMDB read from its raw archive
    (50,000 review files) and vectorized into the cache every later command reads. Timed
    apart, so the tables compare what each table costs, as each seed-recipe row loads
    Keras' pre-tokenized IMDB."""
    code = "from pipeline import datasets; datasets.load_dataset('imdb')"
    m = measure([sys.executable, "-c", code], {"PIPELINE_CACHE_DIR": str(cache)})
    return {"wall_s": m["wall_s"]}


def in_process(script: str, cache: Path, *args: str) -> dict:
    m = measure([sys.executable, script, *args], {"PIPELINE_CACHE_DIR": str(cache)})
    return json.loads(m["stdout"].strip().splitlines()[-1])


def study_trials(stores: Path, cache: Path, n: int = 5) -> dict:
    """Seed-recipe trials of a running study: each trial's wall time from Optuna's records
    (the first, which pays TensorFlow's first-use costs, left out)."""
    done = recipe_study(stores, cache, "bench-trials", n)[1:]
    seconds = [(t.datetime_complete - t.datetime_start).total_seconds() for t in done]
    return {"trial_s": statistics.median(seconds), "trials": len(seconds)}


def recipe_study(stores: Path, cache: Path, name: str, n: int, *extra: str, env=None) -> list:
    """Run a study of `n` seed-recipe trials (no pruning); its complete trials, in order."""
    import optuna

    space = stores / "recipe.yaml"
    space.write_text(yaml.safe_dump({"defaults": FLOOR_RECIPE, "search": {}}))
    args = ["search", "imdb", "--space", str(space), "--study", name, "--n-trials", str(n)]
    project([*args, "--pruner", "none", *extra], stores, cache, env)
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{stores}/optuna.db")
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    return sorted(done, key=lambda t: t.number)


def devices(stores: Path, cache: Path, workers: int, n: int = 12) -> dict:
    """Seed-recipe trials of one study on each kind of device: the CPU (CUDA hidden) and,
    when TensorFlow sees one, the GPU, which the `workers` processes share (memory growth
    on). Per epoch: a trial's training and validation seconds (tracing included) over its
    epochs, median; trials a minute: from the first trial's start to the last trial's end."""
    code = "import tensorflow as tf; print(len(tf.config.list_physical_devices('GPU')))"
    m = measure([sys.executable, "-c", code], {"TF_CPP_MIN_LOG_LEVEL": "3"})
    out: dict = {"gpus": int(m["stdout"].strip().splitlines()[-1]), "workers": workers}
    kinds = {"CPU": {"CUDA_VISIBLE_DEVICES": ""}} | ({"GPU": {}} if out["gpus"] else {})
    for kind, env in kinds.items():
        name = f"bench-{kind.lower()}"
        done = recipe_study(stores, cache, name, n, "--workers", str(workers), env=env)
        start = min(t.datetime_start for t in done)
        span = (max(t.datetime_complete for t in done) - start).total_seconds()
        epochs = [r.seconds / r.epochs_run for r in map(trial_record.read, done)]
        out[kind] = {
            "trials": len(done),
            "epoch_s": statistics.median(epochs),
            "trials_per_min": len(done) / span * 60,
        }
        print(f"  {kind}: {out[kind]}", flush=True)
    return out


def profile(cache: Path) -> str:
    m = measure(
        [sys.executable, "bench/profile_trial.py", "--trials", "3"],
        {"MLFLOW_TRACKING_URI": "", "PIPELINE_CACHE_DIR": str(cache)},
    )
    return m["stdout"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the second table")
    parser.add_argument("--workers", type=int, default=2, help="workers of the second table")
    args = parser.parse_args()
    started = time.time()
    out: dict = {"machine": f"{os.cpu_count()} cores", "python": sys.version.split()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        stores, cache = Path(tmp) / "mlruns", Path(tmp) / "cache"
        stores.mkdir()
        print("1/6 the seed recipe, one process per configuration", flush=True)
        out["seed_recipe"] = seed_recipe(list(SEED_ROWS))
        print("2/6 the blog table, one worker, one seed (whole command)", flush=True)
        out["cache"] = cache_imdb(cache)
        one = project(["reproduce", "blog-imdb", "--seeds", "1", "--study", "t1"], stores, cache)
        out["table_one"] = {k: one[k] for k in ("wall_s", "peak_rss_mb", "peak_pss_mb")} | {
            "markdown": one["stdout"]
        }
        print(f"3/6 the blog table, {args.seeds} seeds, {args.workers} workers", flush=True)
        table = ["reproduce", "blog-imdb", "--seeds", str(args.seeds)]
        full = project([*table, "--workers", str(args.workers), "--study", "t2"], stores, cache)
        out["table_full"] = {k: full[k] for k in ("wall_s", "peak_rss_mb", "peak_pss_mb")}
        out["table_full"] |= {"seeds": args.seeds, "workers": args.workers}
        print("4/6 the floor, and the project's trial bare and in a study", flush=True)
        out["floor"] = in_process("bench/floor.py", cache)
        out["study"] = study_trials(stores, cache)
        out["bookkeeping"] = in_process("bench/bookkeeping.py", cache)
        out["without_files"] = in_process("bench/bookkeeping.py", cache, "--without-files")
        print(f"5/6 devices: trials on the CPU and any GPU, {args.workers} workers", flush=True)
        out["devices"] = devices(stores, cache, args.workers)
        print("6/6 profile of three trials", flush=True)
        profile_text = profile(cache)
    out["bench_wall_s"] = time.time() - started
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(out, indent=2))
    (RESULTS / "latest.md").write_text(render(out, profile_text))
    print((RESULTS / "latest.md").read_text())


if __name__ == "__main__":
    main()
