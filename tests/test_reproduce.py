"""Seed tables reproduced end to end on tiny data, and exports read back from MLflow."""

from __future__ import annotations

import io
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from pipeline import engine, report, seed_tables
from pipeline.cli import app
from pipeline.datasets import spec_of
from pipeline.errors import UserError
from pipeline.tracking import Tracker
from tests.conftest import TINY_SPACE, runs_of, space_file

TINY_TABLE = {
    "name": "tiny-imdb",
    "dataset": "imdb",
    "source": "a two-row test table",
    "defaults": {"optimizer": "rmsprop", "batch_size": 16, "learning_rate": 0.01},
    "columns": ["epochs", "n_layers", "units", "loss"],
    "rows": [
        {
            "epochs": 2,
            "units": [8],
            "loss": "binary_crossentropy",
            "seed": {"split": "val", "loss": 0.5, "accuracy": 0.8},
        },
        {"epochs": 1, "units": [8, 4], "loss": "mse", "seed": {"loss": 0.2, "accuracy": 0.7}},
    ],
    "conclusions": [
        {"claim": "MSE lowers the loss", "metric": "test_loss", "lower": [2], "than": [1]}
    ],
}


def table_file(tmp_path, raw=TINY_TABLE):
    path = tmp_path / "tiny-imdb.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def parse_markdown(text: str) -> pd.DataFrame:
    lines = [line for line in text.splitlines() if line.startswith("|")]
    del lines[1]  # the |---| line
    body = "\n".join(line.strip().strip("|") for line in lines)
    frame = pd.read_csv(io.StringIO(body), sep="|", skipinitialspace=True)
    frame.columns = [c.strip() for c in frame.columns]
    return frame.map(lambda v: v.strip() if isinstance(v, str) else v)


def task_of(name):
    return spec_of(name).task


def test_project_tables_load():
    for name, rows in (("blog-imdb", 16), ("book-reuters", 7), ("book-boston", 1)):
        table = seed_tables.load(seed_tables.table_path(name), task_of)
        assert len(table.rows) == rows
    blog = seed_tables.load(Path("search_spaces/tables/blog-imdb.yaml"), task_of)
    assert blog.rows[0].split == "val" and blog.rows[1].split == "test"
    assert (
        blog.rows[12].params["units"] == [16, 16] and blog.rows[11].params["activation"] == "tanh"
    )


def test_bad_table_rows_name_the_row(tmp_path):
    raw = yaml.safe_load(yaml.safe_dump(TINY_TABLE))
    raw["rows"][1]["loss"] = "hinge"
    with pytest.raises(UserError, match=r"rows\[2\].loss: unknown loss 'hinge'"):
        seed_tables.load(table_file(tmp_path, raw), task_of)
    raw = yaml.safe_load(yaml.safe_dump(TINY_TABLE))
    raw["conclusions"][0]["than"] = [7]
    with pytest.raises(UserError, match=r"conclusions\[1\]: row numbers must be 1..2"):
        seed_tables.load(table_file(tmp_path, raw), task_of)


def test_conclusion_checks():
    means = {
        1: {"test_loss": 0.3, "test_accuracy": 0.88},
        2: {"test_loss": 0.1, "test_accuracy": 0.875},
    }
    lower = seed_tables.Conclusion("mse lowers", "test_loss", "lower", (2,), (1,))
    within = seed_tables.Conclusion("same", "test_accuracy", "within", (2,), (1,), 0.001)
    best = seed_tables.Conclusion("row 1 best", "test_accuracy", "best", (1,), (1, 2))
    assert seed_tables.holds(lower, means) and not seed_tables.holds(within, means)
    assert seed_tables.holds(best, means)
    assert not seed_tables.holds(
        seed_tables.Conclusion("x", "test_loss", "best", (1,), (1, 2)), means
    )


def test_reproduce_tiny_table_end_to_end(tiny_data, stores, tmp_path):
    output = tmp_path / "out.md"
    result = CliRunner().invoke(
        app, ["reproduce", str(table_file(tmp_path)), "--seeds", "2", "--output", str(output)]
    )
    assert result.exit_code == 0, result.output
    text = output.read_text()
    frame = parse_markdown(text)
    assert list(frame["#"]) == [1, 2]
    assert list(frame["units"]) == ["8", "8,4"] and list(frame["split"]) == ["val", "test"]
    assert list(frame["n"]) == [2, 2]
    # our numbers are the MLflow runs' metrics: row 1 validation, row 2 test
    client = MlflowClient(tracking_uri=stores["tracking"])
    parents, children = runs_of(stores["tracking"], "imdb")
    assert len(parents) == 1 and len(children) == 4
    by_prefix = {c.info.run_id[:8]: c for c in children}
    for _, line in frame.iterrows():
        runs = [by_prefix[run_id.strip()] for run_id in line["runs"].split(",")]
        key = "final_val_accuracy" if line["split"] == "val" else "test_accuracy"
        values = [r.data.metrics[key] * 100 for r in runs]
        mean = float(line["our acc %"].split("±")[0])
        assert mean == pytest.approx(sum(values) / len(values), abs=0.01)
        assert float(line["Δ acc (pts)"]) == pytest.approx(mean - line["seed acc %"], abs=0.02)
    # the conclusion's verdict follows the runs' test losses: row 2 (mse) lower than row 1
    losses = {
        int(line["#"]): [
            by_prefix[i.strip()].data.metrics["test_loss"] for i in line["runs"].split(",")
        ]
        for _, line in frame.iterrows()
    }
    lower = sum(losses[2]) / len(losses[2]) < sum(losses[1]) / len(losses[1])
    verdict = "confirmed" if lower else "NOT confirmed"
    assert f"- [{'x' if lower else ' '}] MSE lowers the loss: {verdict} by our test_loss" in text
    files = {a.path for a in client.list_artifacts(parents[0].info.run_id)}
    assert {"tiny-imdb.md", "optimization_history.png"} <= files
    assert "param_importances.png" not in files  # the grid's params are row numbers
    again = CliRunner().invoke(app, ["reproduce", str(table_file(tmp_path)), "--seeds", "2"])
    assert again.exit_code == 0 and "| 8,4 " in again.output  # resumed: nothing retrained
    assert len(runs_of(stores["tracking"], "imdb")[1]) == 4


def test_export_ranks_completed_runs_from_mlflow(tiny_data, stores, tmp_path):
    raw = {
        "defaults": {**TINY_SPACE["defaults"], "epochs": 4},
        "search": {
            "learning_rate": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
            "n_layers": {"type": "int", "low": 1, "high": 2},
        },
    }
    outcome = engine.search(
        engine.SearchJob(dataset="imdb", space=space_file(tmp_path, raw), n_trials=10, seed=3)
    )
    states = [t.state for t in outcome.study.trials]
    complete = [t for t in outcome.study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    result = CliRunner().invoke(app, ["export", "imdb", "--top", "50"])
    assert result.exit_code == 0, result.output
    frame = parse_markdown(result.output)
    assert len(frame) == len(complete) and list(frame["rank"]) == list(range(1, len(frame) + 1))
    assert {"learning_rate", "n_layers", "final_val_accuracy", "test_accuracy", "run_id"} <= set(
        frame.columns
    )
    assert "batch_size" not in frame.columns  # fixed params are not shown
    assert list(frame["final_val_accuracy"]) == sorted(frame["final_val_accuracy"], reverse=True)
    client = MlflowClient(tracking_uri=stores["tracking"])
    for _, line in frame.iterrows():
        metrics = client.get_run(line["run_id"]).data.metrics
        assert metrics["test_accuracy"] == pytest.approx(line["test_accuracy"], abs=1e-3)
    n_pruned = states.count(optuna.trial.TrialState.PRUNED)
    assert n_pruned >= 1 and f"Not ranked: {n_pruned} pruned trials." in result.output
    best = frame.iloc[0]
    assert best["final_val_accuracy"] == pytest.approx(outcome.study.best_value, abs=1e-3)
    csv = CliRunner().invoke(app, ["export", "imdb", "--format", "csv", "--top", "2"])
    assert len(pd.read_csv(io.StringIO(csv.output))) == 2


def test_export_never_ranks_failed_trials(tiny_data, stores, tmp_path):
    raw = {
        "defaults": {"units": 8, "loss": "mse", "epochs": 3, "batch_size": 8, "optimizer": "sgd"},
        "search": {"learning_rate": {"type": "categorical", "choices": [1.0e6, 0.001]}},
    }
    engine.search(
        engine.SearchJob(
            dataset="boston_housing",
            space=space_file(tmp_path, raw),
            n_trials=2,
            sampler="grid",
            pruner="none",
        )
    )
    runs = Tracker(stores["tracking"]).trial_runs("boston_housing", "boston_housing")
    text = report.export_text(runs)
    frame = parse_markdown(text)
    assert len(frame) == 1 and frame["learning_rate"].iloc[0] == 0.001
    assert "Not ranked: 1 failed trials." in text


def test_export_errors(tiny_data, stores):
    result = CliRunner().invoke(app, ["export", "imdb", "--study", "nope"])
    assert result.exit_code == 2 and "no trial runs of study 'nope'" in result.output
    result = CliRunner().invoke(app, ["export", "imdb", "--format", "xlsx"])
    assert result.exit_code == 2 and "unknown format 'xlsx'" in result.output
