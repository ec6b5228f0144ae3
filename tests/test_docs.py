"""The documentation stays true to the code, and a search prints only what a user asked for."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from tests.conftest import space_file

ROOT = Path(__file__).resolve().parent.parent
# what MLflow, Optuna's experimental API, TensorFlow (absl) and MLflow's artifact bars
# printed at the end of every search before they were kept quiet
NOISE = ("mlflow", "absl", "tensorflow", "ExperimentalWarning", "Downloading artifacts",
         "CloudPickle")  # fmt: skip


def test_every_module_under_pipeline_is_in_the_layout_table():
    layout = (ROOT / "docs" / "architecture.md").read_text()
    modules = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "pipeline").rglob("*.py"))
    assert len(modules) > 40
    missing = [m for m in modules if f"`{m}`" not in layout]
    assert missing == []


def test_the_readme_is_short_and_its_links_lead_somewhere():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.encode()) < 10 * 1024
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme)
    local = [link for link in links if "://" not in link]
    assert len(local) >= 10  # the pages of the documentation, the picture, reports
    assert [link for link in local if not (ROOT / link).exists()] == []


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_a_search_prints_nothing_from_the_libraries(tiny_data, stores, tmp_path, workers):
    env = os.environ | {
        "PIPELINE_STORAGE": stores["storage"],
        "MLFLOW_TRACKING_URI": stores["tracking"],
        "PIPELINE_DATA_DIR": str(tiny_data),
    }
    for key in ("MLFLOW_LOGGING_LEVEL", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"):
        env.pop(key, None)  # as a user's shell has them
    space = space_file(tmp_path)
    command = [sys.executable, "-m", "pipeline", "search", "imdb", "--space", str(space)]
    command += ["--n-trials", "2", "--workers", str(workers)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    output = done.stdout + done.stderr
    assert "models:/imdb/1" in output  # the summary names the registered model itself
    printed = [line for line in output.splitlines() if any(w in line for w in NOISE)]
    assert printed == []
    study = optuna.load_study(study_name="imdb", storage=stores["storage"])
    assert study.metric_names == ["val_accuracy"]  # optuna-dashboard's label
