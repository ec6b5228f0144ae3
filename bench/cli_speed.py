"""`make bench-cli`: how long the everyday commands take to answer, median of 5 runs each,
after one small IMDB search: `--help`, `predict` through a single model and through an
ensemble, a search with nothing left to run, `export` and `studies`.

BENCH_BEFORE=DIR times a second checkout (say `git worktree add DIR COMMIT`) on the same
stores, as the "before" column: its code runs through `python -m pipeline` with DIR first
on the path. BENCH_WORK=DIR keeps the search's stores between runs (else a temporary
folder). Writes bench/results/cli.md and cli.json.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
RUNS = 5
REVIEW = "A wonderful, moving film."
# (label, arguments, target in seconds); MODEL and ENSEMBLE are the search's model URIs
COMMANDS = [
    ("pipeline --help", ["--help"], 0.3),
    ("pipeline predict (single model)", ["predict", "MODEL", REVIEW], 3.0),
    ("pipeline predict (ensemble)", ["predict", "ENSEMBLE", REVIEW], None),  # 2x single's
    ("resumed search, nothing to run", ["search", "imdb", "--n-trials", "4"], 3.0),
    ("pipeline export imdb", ["export", "imdb"], 1.5),
    ("pipeline studies", ["studies"], 1.5),
]


def main() -> None:
    work = Path(os.environ.get("BENCH_WORK") or tempfile.mkdtemp(prefix="bench-cli-"))
    work.mkdir(parents=True, exist_ok=True)
    env = os.environ | {
        "MLFLOW_TRACKING_URI": f"sqlite:///{work}/mlflow.db",
        "PIPELINE_STORAGE": f"sqlite:///{work}/optuna.db",
        "PIPELINE_DATA_DIR": os.environ.get("PIPELINE_DATA_DIR", str(ROOT.parent / "shared/data")),
    }
    models = search(work, env)
    codes = {"after": ROOT}
    if os.environ.get("BENCH_BEFORE"):
        codes = {"before": Path(os.environ["BENCH_BEFORE"]).resolve(), **codes}
    rows = []
    for label, args, target in COMMANDS:
        args = [models.get(a, a) for a in args]
        if any(a not in models.values() and a in ("MODEL", "ENSEMBLE") for a in args):
            continue  # no ensemble was registered
        row = {"command": label, "target_s": target}
        for name, code in codes.items():
            row[name] = timed(args, env=env, code=code, cwd=work)
        rows.append(row)
    single = next(r for r in rows if r["command"].endswith("(single model)"))["after"]["median"]
    for row in rows:
        if row["target_s"] is None:
            row["target_s"] = round(2 * single, 2)
        row["met"] = row["after"]["median"] <= row["target_s"]
    report(rows, codes, models)


def search(work: Path, env: dict[str, str]) -> dict[str, str]:
    """A 4-trial IMDB search (once per BENCH_WORK); its best model's and ensemble's URIs."""
    log = work / "search.log"
    if not log.is_file():
        command = [sys.executable, "-m", "pipeline", "search", "imdb", "--n-trials", "4"]
        done = subprocess.run(
            command, env=env, cwd=work, check=True, capture_output=True, text=True
        )
        log.write_text(done.stdout)
    text = log.read_text()
    found = {"MODEL": re.search(r"Best model: (\S+);", text).group(1)}
    ensemble = re.search(r"Ensemble model: (\S+)", text)
    return found | ({"ENSEMBLE": ensemble.group(1)} if ensemble else {})


def timed(args: list[str], env: dict[str, str], code: Path, cwd: Path) -> dict[str, float]:
    """Seconds from start to exit of `python -m pipeline ARGS`, RUNS times (after one
    untimed run: the operating system's file cache warm, as for a user's second command)."""
    env = env | {"PYTHONPATH": str(code)}
    command = [sys.executable, "-m", "pipeline", *args]
    seconds = []
    for i in range(RUNS + 1):
        start = time.perf_counter()
        subprocess.run(command, env=env, cwd=cwd, check=True, capture_output=True)
        if i:
            seconds.append(time.perf_counter() - start)
    return {
        "median": round(statistics.median(seconds), 2),
        "min": round(min(seconds), 2),
        "max": round(max(seconds), 2),
    }


def report(rows: list[dict], codes: dict[str, Path], models: dict[str, str]) -> None:
    names = list(codes)
    lines = [
        "# How fast the commands answer",
        "",
        f"`make bench-cli`, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores; median of "
        f"{RUNS} runs (min-max) after one untimed run, each command in a fresh process, "
        "after a 4-trial IMDB search (single model "
        f"`{models['MODEL']}`, ensemble `{models.get('ENSEMBLE', 'not registered')}`).",
        "",
        "| command | " + " | ".join(f"{n} (s)" for n in names) + " | target (s) | met |",
        "|---|" + "---:|" * len(names) + "---:|---|",
    ]
    for row in rows:
        cells = [f"{row[n]['median']:.2f} ({row[n]['min']:.2f}-{row[n]['max']:.2f})" for n in names]
        met = "yes" if row["met"] else "**no**"
        lines.append(
            f"| {row['command']} | " + " | ".join(cells) + f" | {row['target_s']} | {met} |"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "cli.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "cli.json").write_text(json.dumps(rows, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
