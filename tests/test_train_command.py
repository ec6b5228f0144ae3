"""`pipeline train`: a diverged training is one line, exit code 1 and a FAILED run; every run
it opens is closed whatever happens; a list of units sets the depth."""

from __future__ import annotations

import re

import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from pipeline import engine
from pipeline.cli import app
from pipeline.engine import planner, records, train_run


def all_runs(tracking_uri: str) -> list:
    client = MlflowClient(tracking_uri=tracking_uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(experiments)


def test_a_diverged_training_is_one_line_exit_1_and_a_failed_run(tiny_data, stores):
    args = ["train", "boston_housing", "learning_rate=1000000", "epochs=3"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, lines
    pattern = r"error: training diverged: loss became (nan|inf) at epoch [1-3]; its MLflow run is"
    assert re.fullmatch(pattern + " FAILED", lines[0]), lines[0]
    runs = all_runs(stores["tracking"])
    assert [r.info.status for r in runs] == ["FAILED"]
    assert "became" in runs[0].data.tags["error"]


def test_a_run_that_train_opens_is_closed_when_logging_its_files_fails(
    tiny_data, stores, monkeypatch
):
    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(train_run, "write_trial_files", disk_full)
    plan = planner.train_plan(engine.TrainJob(dataset="imdb", overrides={"epochs": 1}))
    with pytest.raises(OSError, match="No space left"):
        train_run.train_once(plan)
    runs = all_runs(stores["tracking"])
    assert [r.info.status for r in runs] == ["FAILED"]
    assert records.write_trial_files is not disk_full  # only train's reference was replaced


def test_a_list_of_units_sets_the_depth_and_n_layers_must_agree(tiny_data, stores):
    plan = planner.train_plan(
        engine.TrainJob(dataset="imdb", overrides={"units": [8, 8, 4], "epochs": 1})
    )
    assert (plan.params["n_layers"], plan.params["units"]) == (3, [8, 8, 4])
    run_id, result = train_run.train_once(plan)
    logged = MlflowClient(tracking_uri=stores["tracking"]).get_run(run_id).data.params
    assert (logged["n_layers"], logged["units"], logged["units_3"]) == ("3", "8,8,4", "4")
    assert [layer.units for layer in result.model.layers if hasattr(layer, "units")] == [8, 8, 4, 1]
    one = planner.train_plan(
        engine.TrainJob(dataset="imdb", overrides={"units": 32})
    )  # one count: every layer of the defaults
    assert (one.params["n_layers"], one.params["units"]) == (2, 32)
