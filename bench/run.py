"""`make bench`: the seed notebooks' recipe and the project side by side, on one machine.

Writes bench/results/latest.json and latest.md. Absolute seconds vary between machines;
the ratios (project : seed recipe) are the claim. Needs PIPELINE_DATA_DIR with the real
IMDB archive. About 20 minutes on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
BLOG = ROOT / "search_spaces" / "tables" / "blog-imdb.yaml"
SEED_ROWS = (2, 3, 11)  # 4-epoch rows of blog-imdb: 16-16 bce, 16 bce, 16 mse


# --- measuring a process tree ----------------------------------------------------------


def _tree_rss(root: int) -> int:
    """Resident bytes of `root` and all its descendants, from /proc."""
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
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += children.get(pid, [])
    return total


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
    peak = [0]

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], _tree_rss(proc.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{err[-3000:]}")
    return {"wall_s": time.perf_counter() - start, "peak_rss_mb": peak[0] / 2**20, "stdout": out}


# --- the pieces ---------------------------------------------------------------------------


def blog_rows() -> list[dict]:
    return yaml.safe_load(BLOG.read_text())["rows"]


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


def subset_table(folder: Path, rows: list[int]) -> Path:
    raw = yaml.safe_load(BLOG.read_text())
    raw["rows"] = [raw["rows"][i - 1] for i in rows]
    raw["conclusions"], raw["name"] = [], "bench-rows"
    path = folder / "bench-rows.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def project(args: list[str], stores: Path, cache: Path) -> dict:
    env = {
        "MLFLOW_TRACKING_URI": f"sqlite:///{stores}/mlflow.db",
        "PIPELINE_STORAGE": f"sqlite:///{stores}/optuna.db",
        "PIPELINE_CACHE_DIR": str(cache),
    }
    return measure([sys.executable, "-m", "pipeline", *args], env)


def overhead(n: int = 4) -> dict:
    """The same trial with MLflow + Optuna logging on, and as a bare train_and_evaluate."""
    code = f"""
import json, os, tempfile, time
from pathlib import Path
from pipeline import datasets
from pipeline import search
from pipeline.training import train_and_evaluate
params = dict(units=[16, 16], loss="binary_crossentropy", epochs=4, batch_size=512)
data = datasets.load_dataset("imdb")
train_and_evaluate(params, data)  # warm-up: first tracing of TensorFlow
start = time.perf_counter()
for seed in range({n}):
    train_and_evaluate(params, data, seed=seed)
bare = (time.perf_counter() - start) / {n}
tmp = tempfile.mkdtemp()
space = Path(tmp) / "s.yaml"
space.write_text("defaults: " + json.dumps(params) + "\\nsearch: {{}}\\n")
os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{{tmp}}/mlflow.db"
os.environ["PIPELINE_STORAGE"] = f"sqlite:///{{tmp}}/optuna.db"
search.run_search(search.SearchOptions("imdb", space, n_trials=1, pruner="none"))  # store setup
start = time.perf_counter()
search.run_search(search.SearchOptions("imdb", space, n_trials={n} + 1, pruner="none"))
tracked = (time.perf_counter() - start) / {n}
print(json.dumps({{"bare_s": bare, "tracked_s": tracked}}))
"""
    m = measure([sys.executable, "-c", code])
    return json.loads(m["stdout"].strip().splitlines()[-1])


PRUNING_SPACE = {
    "dataset": "imdb",
    "defaults": {
        "optimizer": "rmsprop",
        "learning_rate": 0.001,
        "batch_size": 512,
        "activation": "relu",
        "dropout": 0.0,
        "units": 16,
        "loss": "binary_crossentropy",
        "epochs": 4,
    },
    "search": {
        "n_layers": {"type": "int", "low": 1, "high": 5},
        "units": {"type": "categorical", "choices": [8, 16, 32, 64], "per_layer": True},
        "loss": {"type": "categorical", "choices": ["binary_crossentropy", "mse"]},
        "activation": {"type": "categorical", "choices": ["relu", "tanh"]},
        "epochs": {"type": "int", "low": 4, "high": 20},
    },
}


def pruning(
    grid_best: float, grid_epochs: int, stores: Path, cache: Path, max_trials: int = 30
) -> dict:
    """TPE + median pruner over the blog's dimensions: epochs trained until the grid's best
    validation accuracy is reached."""
    space = stores / "pruning.yaml"
    space.write_text(yaml.safe_dump(PRUNING_SPACE))
    project(
        [
            "search",
            "imdb",
            "--space",
            str(space),
            "--study",
            "bench-pruning",
            "--n-trials",
            str(max_trials),
            "--timeout",
            "900",
            "--pruner",
            "median",
        ],
        stores,
        cache,
    )
    import optuna

    study = optuna.load_study(study_name="bench-pruning", storage=f"sqlite:///{stores}/optuna.db")
    spent, reached_at = 0, None
    for t in sorted(study.trials, key=lambda t: t.number):
        spent += t.user_attrs.get("epochs_run", 0)
        if t.value is not None and t.value >= grid_best and reached_at is None:
            reached_at = spent
    return {
        "grid_best_val_accuracy": grid_best,
        "grid_epochs": grid_epochs,
        "tpe_epochs_to_reach": reached_at,
        "tpe_trials": len(study.trials),
        "tpe_epochs_total": spent,
        "tpe_best_val_accuracy": study.best_value,
    }


def profile(stores: Path, cache: Path) -> str:
    m = measure(
        [sys.executable, "bench/profile_trial.py", "--trials", "3"],
        {"MLFLOW_TRACKING_URI": "", "PIPELINE_CACHE_DIR": str(cache)},
    )
    return m["stdout"]


def _figures(text: str) -> dict[str, float]:
    """`pipeline train` prints key=value pairs."""
    pairs = (word.split("=", 1) for line in text.splitlines() for word in line.split())
    return {k: float(v) for k, v in pairs if k.startswith(("val_", "test_"))}


def _table_accuracy(markdown: str) -> list[float]:
    """The 'our acc %' means of a reproduce table."""
    lines = [line.split("|") for line in markdown.splitlines() if line.startswith("|")]
    col = [c.strip() for c in lines[0]].index("our acc %")
    return [float(line[col].split("±")[0]) for line in lines[2:]]


def ratio(seed: float, ours: float) -> float:
    return seed / ours if ours else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the full blog table")
    parser.add_argument("--workers", type=int, default=2, help="workers for the full table")
    args = parser.parse_args()
    started = time.time()
    out: dict = {"machine": f"{os.cpu_count()} cores", "python": sys.version.split()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        stores, cache = Path(tmp) / "mlruns", Path(tmp) / "cache"
        stores.mkdir()
        print("1/5 the seed recipe, one process per configuration", flush=True)
        out["seed_recipe"] = seed_recipe(list(SEED_ROWS))
        print(
            "2/5 the project: one configuration (cold and warm cache), the same rows, "
            "the whole blog table",
            flush=True,
        )
        cold = project(["train", "imdb", "units=16,16", "epochs=4"], stores, cache)
        warm = project(["train", "imdb", "units=16,16", "epochs=4"], stores, cache)
        rows = project(
            [
                "reproduce",
                str(subset_table(Path(tmp), list(SEED_ROWS))),
                "--seeds",
                "1",
                "--study",
                "bench-rows",
            ],
            stores,
            cache,
        )
        full = project(
            [
                "reproduce",
                "blog-imdb",
                "--seeds",
                str(args.seeds),
                "--workers",
                str(args.workers),
                "--study",
                "bench-blog",
            ],
            stores,
            cache,
        )
        out["project"] = {
            "train_cold": {k: cold[k] for k in ("wall_s", "peak_rss_mb")}
            | _figures(cold["stdout"]),
            "train_warm": {k: warm[k] for k in ("wall_s", "peak_rss_mb")}
            | _figures(warm["stdout"]),
            "rows": {
                "wall_s": rows["wall_s"],
                "peak_rss_mb": rows["peak_rss_mb"],
                "test_accuracy_pct": _table_accuracy(rows["stdout"]),
            },
            "blog_table": {
                "wall_s": full["wall_s"],
                "peak_rss_mb": full["peak_rss_mb"],
                "trainings": 16 * args.seeds,
                "workers": args.workers,
            },
        }
        print("3/5 tracking overhead", flush=True)
        out["overhead"] = overhead()
        print("4/5 pruning: TPE + median pruner against the 16-row grid", flush=True)
        import optuna

        grid = optuna.load_study(study_name="bench-blog", storage=f"sqlite:///{stores}/optuna.db")
        one_pass = [t.value for t in grid.trials if t.params.get("replicate") == 0 and t.value]
        grid_epochs = sum(r["epochs"] for r in blog_rows())  # one pass over the 16 rows
        out["pruning"] = pruning(max(one_pass), grid_epochs, stores, cache)
        print("5/5 profile of three trials", flush=True)
        profile_text = profile(stores, cache)
    out["bench_wall_s"] = time.time() - started
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(out, indent=2))
    (RESULTS / "latest.md").write_text(render(out, profile_text))
    print((RESULTS / "latest.md").read_text())


def _mark(ok: bool) -> str:
    return "met" if ok else "MISSED"


def targets(out, table_seed, seed_wall, seed_acc, ours_acc, overhead_pct) -> list[str]:
    """Each target of the issue, met or missed, with the reason where it is missed."""
    p, pr = out["project"], out["pruning"]
    table_s = p["blog_table"]["wall_s"]
    one = p["train_warm"]["wall_s"]
    acc_gap = max(abs(a - b) for a, b in zip(seed_acc, ours_acc, strict=True))
    study_mb = p["rows"]["peak_rss_mb"]
    reached = pr["tpe_epochs_to_reach"]
    return [
        f"- blog-imdb, {p['blog_table']['trainings']} trainings, <= 180 s and >= 10x: "
        f"{table_s:.0f} s, {table_seed / table_s:.1f}x: {_mark(table_s <= 180)} / "
        f"{_mark(table_seed / table_s >= 10)}. What is left per trial is TensorFlow work "
        "(tracing a new model's train function, sparse matmuls) on 2 cores; see the profile.",
        f"- one configuration incl. data loading >= 5x: {seed_wall / one:.1f}x "
        f"({_mark(seed_wall / one >= 5)}). A fresh `pipeline train` process pays TensorFlow's "
        "import (~4 s) and MLflow's store check (~1-2 s) before a ~3 s fit; inside one "
        f"`pipeline reproduce` a configuration costs {p['rows']['wall_s'] / len(seed_acc):.1f} s.",
        f"- accuracy within 0.5 point of the seed recipe: largest gap {acc_gap:.2f} "
        f"({_mark(acc_gap <= 0.5)}; one seed each, and one run moves by about 0.5 point).",
        f"- peak memory of an IMDB study <= 1.5 GB: {study_mb:.0f} MB in one process "
        f"({_mark(study_mb <= 1536)}); each extra worker process adds about 1.2 GB.",
        f"- MLflow + Optuna overhead <= 5%: {overhead_pct:.1f}% ({_mark(overhead_pct <= 5)}). "
        "Plots and MLflow calls run on a background thread; what remains is the child run's "
        "creation and params (SQLite commits) and the best model's save on the training thread.",
        "- TPE + pruner reaches the grid's best with <= half its epochs: "
        + (
            f"{reached} of {pr['grid_epochs']} epochs ({_mark(reached <= pr['grid_epochs'] / 2)})."
            if reached
            else f"not reached in {pr['tpe_trials']} trials (MISSED): the grid's best "
            "is one lucky seed of a 4-epoch 16-16 network, within run-to-run noise of TPE's "
            "best, and TPE spends its first 10 trials at random."
        ),
    ]


def render(out: dict, profile_text: str) -> str:
    seed = out["seed_recipe"]
    p = out["project"]
    seed_s = sum(r["total_s"] for r in seed) / len(seed)
    seed_wall = sum(r["wall_s"] for r in seed) / len(seed)
    seed_mem = max(r["peak_rss_mb"] for r in seed)
    seed_acc = [r["test_accuracy"] * 100 for r in seed]
    ours_acc = p["rows"]["test_accuracy_pct"]
    per_config = p["rows"]["wall_s"] / len(seed)
    table_seed = seed_wall * p["blog_table"]["trainings"]
    ov = out["overhead"]
    overhead_pct = (ov["tracked_s"] - ov["bare_s"]) / ov["tracked_s"] * 100
    pr = out["pruning"]
    rows = [
        (
            "one configuration incl. data loading, cold cache (s)",
            seed_wall,
            p["train_cold"]["wall_s"],
        ),
        (
            "one configuration incl. data loading, warm cache (s)",
            seed_wall,
            p["train_warm"]["wall_s"],
        ),
        (
            f"per configuration, {len(seed)} rows in one `pipeline reproduce` (s)",
            seed_wall,
            per_config,
        ),
        (
            f"blog-imdb table, {p['blog_table']['trainings']} trainings, "
            f"{p['blog_table']['workers']} workers (s)",
            table_seed,
            p["blog_table"]["wall_s"],
        ),
        ("peak memory, one configuration (MB)", seed_mem, p["train_warm"]["peak_rss_mb"]),
        ("peak memory, a study in one process (MB)", seed_mem, p["rows"]["peak_rss_mb"]),
        (
            f"peak memory, the table with {p['blog_table']['workers']} workers (MB)",
            seed_mem,
            p["blog_table"]["peak_rss_mb"],
        ),
    ]
    lines = [
        "# Benchmark: the seed recipe vs the project",
        "",
        f"Machine: {out['machine']}, Python {out['python']}; bench wall time "
        f"{out['bench_wall_s'] / 60:.1f} min. Ratio = seed recipe / project (higher is better "
        "for the project). The seed recipe's table time is its measured per-configuration "
        "time x the number of trainings.",
        "",
        "| measure | seed recipe | project | ratio |",
        "|---|---:|---:|---:|",
        *[f"| {name} | {a:.1f} | {b:.1f} | {ratio(a, b):.1f}x |" for name, a, b in rows],
        "",
        f"Seed recipe per configuration: {seed_s:.1f} s in-process, of which vectorizing "
        f"{sum(r['vectorize_s'] for r in seed) / len(seed):.1f} s and fit "
        f"{sum(r['fit_s'] for r in seed) / len(seed):.1f} s.",
        "",
        "Test accuracy (%) per row, seed recipe vs project (one seed each): "
        + ", ".join(
            f"row {r}: {a:.2f} vs {b:.2f}"
            for r, a, b in zip(SEED_ROWS, seed_acc, ours_acc, strict=True)
        ),
        "",
        f"Tracking overhead: a trial takes {ov['bare_s']:.2f} s bare and {ov['tracked_s']:.2f} s "
        f"with MLflow + Optuna logging: {overhead_pct:.1f}% of the trial.",
        "",
        f"Pruning: one pass of the 16-row grid (seed 0) trains {pr['grid_epochs']} epochs; its "
        f"best validation accuracy is {pr['grid_best_val_accuracy']:.4f}. TPE + median pruner "
        + (
            f"reached it after {pr['tpe_epochs_to_reach']} epochs "
            f"({pr['tpe_epochs_to_reach'] / pr['grid_epochs']:.0%} of the grid's)."
            if pr["tpe_epochs_to_reach"]
            else f"did not reach it in {pr['tpe_trials']} trials ({pr['tpe_epochs_total']} epochs; "
            f"best {pr['tpe_best_val_accuracy']:.4f})."
        ),
        "",
        "## Targets (issue #5)",
        "",
        *targets(out, table_seed, seed_wall, seed_acc, ours_acc, overhead_pct),
        "",
        "## Profile of three seed-recipe trials in the project (pyinstrument)",
        "",
        "```",
        profile_text.strip(),
        "```",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
