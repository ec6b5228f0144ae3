"""`make bench-gru`: your own recurrent model on each Keras backend, on the CPU.

`pipeline.train("imdb", space="imdb-gru", params={"epochs": 1}, backend=B)` (the
bidirectional GRU of examples/imdb_gru.py at its defaults, Keras Tuner's form) in a fresh
child process per backend, into a temporary store: the seconds of that call (data cached,
so mostly the epoch and the evaluation), its validation accuracy and the child's peak
resident memory. Writes bench/results/gru_backends.md."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ("tensorflow", "jax", "torch")
CHILD = """
import json, resource, sys, time
import pipeline
began = time.perf_counter()
result = pipeline.train("imdb", space="imdb-gru", params={"epochs": 1}, backend=sys.argv[1])
seconds = time.perf_counter() - began
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("RESULT", json.dumps({"seconds": seconds, "val": result.val_value, "peak_mib": peak}))
"""


def main() -> None:
    rows = [_row(backend) for backend in BACKENDS]
    lines = [
        "# Your own recurrent model on each backend (`make bench-gru`, CPU)",
        "",
        '`pipeline.train("imdb", space="imdb-gru", params={"epochs": 1}, backend=B)`: the '
        "bidirectional GRU of examples/imdb_gru.py at its defaults (embedding 32, 16 units, "
        "200 token ids, batch 128), one epoch on IMDB's 20,000 training reviews, then the "
        f"validation and test figures; {platform.machine()}, {os.cpu_count()} cores, the "
        "token-id cache already made. Seconds: the whole call in a fresh process.",
        "",
        "| backend | seconds | val accuracy | peak MiB |",
        "|---|---:|---:|---:|",
        *rows,
        "",
    ]
    out = ROOT / "bench" / "results" / "gru_backends.md"
    out.write_text("\n".join(lines))
    print("\n".join(lines))


def _row(backend: str) -> str:
    work = Path(tempfile.mkdtemp(prefix="bench-gru-"))
    env = os.environ | {"MLFLOW_TRACKING_URI": f"sqlite:///{work}/mlflow.db"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, backend], env=env, cwd=ROOT, capture_output=True, text=True
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        return f"| {backend} | failed: {done.stderr.strip().splitlines()[-1:]} | | |"
    got = json.loads(line.removeprefix("RESULT "))
    return f"| {backend} | {got['seconds']:.0f} | {got['val']:.4f} | {got['peak_mib']:.0f} |"


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    main()
