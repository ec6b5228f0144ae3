"""`make bench-ensemble`: does the ensemble of a search's kept trials beat its best trial?

For IMDB, Reuters and Boston: the default search (`pipeline search DATASET --workers 2`,
30 trials) with 3 sampler seeds; `BENCH_WIDE=1` adds the wide spaces (imdb-wide 100
trials, reuters-wide and boston_housing-wide 40, 2 workers, seed 0). For each study: the
best trial's and the ensemble's validation, held-out and test figures, its members, the
seconds `pipeline ensemble` takes to choose it again, the disk the study's runs take, and
for IMDB the time of 1,000 raw test reviews through the ensemble and through the best
trial's model. Writes bench/results/ensembles.md and .json.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SEEDS = (0, 1, 2)
DEFAULT = {"imdb": [], "reuters": [], "boston_housing": []}
WIDE = {
    "imdb": ["--space", "imdb-wide", "--n-trials", "100"],
    "reuters": ["--space", "reuters-wide", "--n-trials", "40"],
    "boston_housing": ["--space", "boston_housing-wide", "--n-trials", "40"],
}


def main() -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    work = Path(os.environ.get("BENCH_WORK") or tempfile.mkdtemp(prefix="bench-ensemble-"))
    env = os.environ | {
        "MLFLOW_TRACKING_URI": f"sqlite:///{work}/mlflow.db",
        "PIPELINE_STORAGE": f"sqlite:///{work}/optuna.db",
    }
    only = os.environ.get("BENCH_DATASETS", "imdb,reuters,boston_housing").split(",")
    plans = [(d, "default", s, []) for d in DEFAULT if d in only for s in SEEDS]
    if os.environ.get("BENCH_WIDE"):
        plans += [(d, "wide", 0, extra) for d, extra in WIDE.items() if d in only]
    # BENCH_WORK=DIR resumes: a study measured already is read from DIR/rows.json
    done_file = work / "rows.json"
    done = json.loads(done_file.read_text()) if done_file.exists() else {}
    rows = []
    for dataset, label, seed, extra in plans:
        study = f"{dataset}-{label}-{seed}"
        print(f"search {study}", flush=True)
        if study not in done:
            args = ["search", dataset, "--seed", str(seed), "--study", study, "--workers", "2"]
            wall = run([*args, "--timeout", "3600", *extra], env, work)
            again = run(["ensemble", study], env, work)
            done[study] = describe(dataset, label, seed, study, env, wall, again)
            done_file.write_text(json.dumps(done, indent=1))
        rows.append(done[study])
    speed = predict_speed(work, env, rows) if "imdb" in only else {}
    out = {"rows": rows, "predict": speed, "machine": machine()}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ensembles.json").write_text(json.dumps(out, indent=1))
    text = render(out)
    (RESULTS / "ensembles.md").write_text(text)
    print(text)


def run(args: list[str], env: dict, cwd: Path) -> float:
    start = time.perf_counter()
    command = [sys.executable, "-m", "pipeline", *args]
    subprocess.run(command, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def describe(dataset, label, seed, study_name, env, wall, again) -> dict:
    from mlflow.tracking import MlflowClient

    from pipeline.engine import ensembling

    study = optuna.load_study(study_name=study_name, storage=env["PIPELINE_STORAGE"])
    chosen = ensembling.from_record(study.user_attrs["ensemble"])
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    runs = client.search_runs(
        [client.get_experiment_by_name(dataset).experiment_id],
        f"tags.study = '{study_name}'",
        max_results=1000,
    )
    disk = sum(_size(Path(r.info.artifact_uri.removeprefix("file://"))) for r in runs)
    states = [t.state.name for t in study.trials]
    return {
        "dataset": dataset,
        "search": label,
        "seed": seed,
        "trials": len(study.trials),
        "complete": states.count("COMPLETE"),
        "metric": chosen.metric,
        "best_trial": chosen.best_trial,
        "best_val": chosen.best_val,
        "best_held_out": chosen.best_held_out,
        "best_test": chosen.best_test,
        "ensemble_val": chosen.val,
        "ensemble_held_out": chosen.held_out,
        "ensemble_test": chosen.test,
        "members": {str(k): v for k, v in chosen.members.items()},
        "candidates": chosen.candidates,
        "registered": chosen.model_uri is not None,
        "search_s": wall,
        "ensemble_s": again,
        "disk_mb": disk / 1e6,
    }


def _size(folder: Path) -> int:
    if not folder.is_dir():
        return 0
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def predict_speed(work: Path, env: dict, rows: list[dict]) -> dict:
    """Seconds for 1,000 raw IMDB test reviews through the best trial's model and through
    the ensemble (median of 5, after one warm-up call), for IMDB's first default study. The
    ensemble is logged again first: a logged model ships the code it was logged with."""
    code = """
import json, os, statistics, sys, time
from pathlib import Path
import mlflow, optuna, pandas as pd
from pipeline.datasets.builtin import imdb
from pipeline.engine import ensembling
from pipeline.tracking import models
study = optuna.load_study(study_name=sys.argv[1], storage=sys.argv[2])
chosen = ensembling.from_record(study.user_attrs["ensemble"])
tracker_uri = sys.argv[3]
from pipeline import tracking
tracker = tracking.Tracker(tracker_uri)
chosen = ensembling.register(chosen, study, tracker, experiment="imdb")  # with this code
runs = {int(r["tags"]["trial_number"]): r for r in tracker.trial_runs("imdb", sys.argv[1])}
single = runs[chosen.best_trial]["tags"].get("best_model_uri") or "models:/" + sys.argv[1] + "/1"
archive = Path(os.environ["PIPELINE_DATA_DIR"]) / "aclImdb_v1.tar.gz"
texts = pd.DataFrame({"text": imdb.read_reviews(archive)["test"][0][:1000]})
out = {}
for name, uri in (("best trial", single), ("ensemble", chosen.model_uri)):
    model = mlflow.pyfunc.load_model(uri)
    model.predict(texts)
    times = []
    for _ in range(5):
        start = time.perf_counter(); model.predict(texts); times.append(time.perf_counter() - start)
    out[name] = {"uri": uri, "seconds": statistics.median(times)}
out["members"] = len(chosen.members)
print(json.dumps(out))
"""
    study = next(r for r in rows if r["dataset"] == "imdb")
    name = f"imdb-{study['search']}-{study['seed']}"
    done = subprocess.run(
        [sys.executable, "-c", code, name, env["PIPELINE_STORAGE"], env["MLFLOW_TRACKING_URI"]],
        env=env,
        cwd=work,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def machine() -> str:
    cpus = os.cpu_count()
    return f"{cpus} CPUs, {os.uname().sysname} {os.uname().machine}, no GPU"


def render(out: dict) -> str:
    lines = [
        "# Ensembles against the best trial",
        "",
        f"`make bench-ensemble` on {out['machine']}. Each row: one search "
        "(`--workers 2`), the best trial by validation and the ensemble of its kept "
        "trials (25 greedy picks). *Held out*: each half of the validation rows scored "
        "by what the other half chose. Test figures are for reports only: nothing was "
        "chosen on them.",
        "",
        "| search | seed | trials (complete) | best trial: val / held out / test "
        "| ensemble: val / held out / test | gain on test | members | registered "
        "| search s | ensemble s | disk MB |",
        "|---|---:|---:|---|---|---:|---:|---|---:|---:|---:|",
    ]
    for r in out["rows"]:
        gain, unit = _gain(r), "" if "mae" in r["metric"] else " pt"
        lines.append(
            f"| {r['dataset']} {r['search']} | {r['seed']} | {r['trials']} ({r['complete']}) "
            f"| {r['best_val']:.4f} / {r['best_held_out']:.4f} / {r['best_test']:.4f} "
            f"| {r['ensemble_val']:.4f} / {r['ensemble_held_out']:.4f} / {r['ensemble_test']:.4f} "
            f"| {gain:+.3f}{unit} | {len(r['members'])} of {r['candidates']} "
            f"| {'yes' if r['registered'] else 'no'} | {r['search_s']:.0f} | {r['ensemble_s']:.1f} "
            f"| {r['disk_mb']:.0f} |"
        )
    lines += ["", "Mean gain on test over the seeds of each default search:", ""]
    for dataset in dict.fromkeys(r["dataset"] for r in out["rows"]):
        rows = [r for r in out["rows"] if r["dataset"] == dataset and r["search"] == "default"]
        if not rows:
            continue
        gains = [_gain(r) for r in rows]
        what = "MAE lower by" if "mae" in rows[0]["metric"] else "accuracy points"
        lines.append(f"- {dataset}: {what} {statistics.mean(gains):+.3f} ({len(rows)} seeds)")
    if out["predict"]:
        p = out["predict"]
        ratio = p["ensemble"]["seconds"] / p["best trial"]["seconds"]
        lines += [
            "",
            "1,000 raw IMDB test reviews, median of 5: best trial "
            f"{p['best trial']['seconds']:.3f} s, ensemble of {p['members']} "
            f"{p['ensemble']['seconds']:.3f} s ({ratio:.2f}x).",
        ]
    return "\n".join(lines) + "\n"


def _gain(row: dict) -> float:
    """The ensemble's gain on test: MAE lower by, or accuracy points higher."""
    if "mae" in row["metric"]:
        return row["best_test"] - row["ensemble_test"]
    return (row["ensemble_test"] - row["best_test"]) * 100


if __name__ == "__main__":
    main()
