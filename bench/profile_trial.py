"""Profile trials of the seed recipe on real IMDB (pyinstrument), tracking included.

PIPELINE_DATA_DIR=../shared/data python bench/profile_trial.py [--trials 3] [--html out]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--text", type=Path, default=None, help="write the text profile here")
    args = parser.parse_args()
    from pyinstrument import Profiler

    from pipeline import datasets, engine

    datasets.load_dataset("imdb")  # vectorize (or read the cache) outside the profile
    with tempfile.TemporaryDirectory() as tmp:
        space = Path(tmp) / "seed.yaml"
        space.write_text(
            "defaults: {units: [16, 16], loss: binary_crossentropy, epochs: 4,\n"
            "           batch_size: 512}\nsearch: {}\n"
        )
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db"
        os.environ["PIPELINE_STORAGE"] = f"sqlite:///{tmp}/optuna.db"
        profiler = Profiler()
        profiler.start()
        engine.search(
            engine.SearchJob(
                dataset="imdb", space=space, n_trials=args.trials, pruner="none", timeout=None
            )
        )
        profiler.stop()
    text = profiler.output_text(unicode=False, color=False, show_all=False)
    if args.text:
        args.text.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
