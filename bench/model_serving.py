"""`make bench-model`: the registered best model on real IMDB data.

Runs a short search for each model family into a temporary store, then loads the
champion as MLflow does and measures: its accuracy on the 25,000 raw test reviews read
from the archive against the trial's logged test accuracy, the latency of one text (p50
of 50 calls) and the throughput of 10,000 texts in one call. Writes
bench/results/model_serving.md.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
FAMILIES = {"mlp": ("imdb", 5), "embedding": ("imdb-embedding", 3)}


def main() -> None:
    from mlflow.tracking import MlflowClient

    from pipeline.datasets.builtin import imdb
    from pipeline.tracking import models

    work = Path(tempfile.mkdtemp(prefix="bench-model-"))
    uri = f"sqlite:///{work}/mlflow.db"
    env = os.environ | {"MLFLOW_TRACKING_URI": uri, "PIPELINE_STORAGE": f"sqlite:///{work}/o.db"}
    texts, labels = imdb.read_reviews(Path(os.environ["PIPELINE_DATA_DIR"]) / "aclImdb_v1.tar.gz")[
        "test"
    ]
    rows = []
    for family, (space, trials) in FAMILIES.items():
        study = f"bench-{family}"
        args = ["search", "imdb", "--space", space, "--n-trials", str(trials), "--study", study]
        subprocess.run([sys.executable, "-m", "pipeline", *args], env=env, check=True, cwd=ROOT)
        client = MlflowClient(uri)
        version = client.get_model_version_by_alias(study, models.CHAMPION)
        logged = client.get_run(version.run_id).data.metrics["test_accuracy"]
        model = models.load_model(uri, f"models:/{study}@champion")
        start = time.perf_counter()
        out = model.predict(pd.DataFrame({"text": texts}))
        whole = time.perf_counter() - start
        accuracy = float(np.mean((out["label"] == "positive").to_numpy() == (labels == 1)))
        one = []
        for text in texts[:50]:
            start = time.perf_counter()
            model.predict(pd.DataFrame({"text": [text]}))
            one.append(time.perf_counter() - start)
        start = time.perf_counter()
        model.predict(pd.DataFrame({"text": texts[:10_000]}))
        batch = time.perf_counter() - start
        rows.append(
            {
                "family": family,
                "model": f"models:/{study}/{version.version}",
                "logged test accuracy": round(logged, 5),
                "raw test accuracy": round(accuracy, 5),
                "difference (points)": round((accuracy - logged) * 100, 3),
                "25,000 texts (s)": round(whole, 1),
                "one text p50 (ms)": round(statistics.median(one) * 1000, 1),
                "10,000 texts (texts/s)": round(10_000 / batch),
            }
        )
    table = pd.DataFrame(rows).to_markdown(index=False)
    text = (
        "# The registered model on raw IMDB reviews (`make bench-model`, 2-core CPU)\n\n"
        "Each family's champion after a short search, loaded with `mlflow.pyfunc.load_model`"
        " and fed the raw test reviews of the archive.\n\n" + table + "\n"
    )
    out_file = ROOT / "bench" / "results" / "model_serving.md"
    out_file.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
