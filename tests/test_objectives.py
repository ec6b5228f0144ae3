"""Two objectives: accuracy with model size or latency, the Pareto front in Optuna, the
parent run, and the export."""

from __future__ import annotations

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from pipeline import engine, metrics, report
from pipeline.cli import app
from pipeline.errors import UserError
from tests.conftest import artifacts, runs_of, space_file

SPACE = {
    "defaults": {"loss": "binary_crossentropy", "epochs": 1, "batch_size": 16},
    "search": {
        "n_layers": {"type": "int", "low": 1, "high": 2},
        "units": {"type": "int", "low": 2, "high": 64, "log": True},
        "learning_rate": {"type": "float", "low": 1.0e-3, "high": 3.0e-2, "log": True},
    },
}


def test_pareto_front_keeps_the_undominated_rows():
    values = np.array([[1, 5], [2, 2], [3, 1], [3, 3], [2, 2], [5, 5]])  # both minimized
    assert report.pareto_front(values).tolist() == [True, True, True, False, True, False]


@pytest.mark.parametrize(
    ("task", "spec", "expected"),
    [
        ("binary", None, ("accuracy",)),
        ("binary", "accuracy,params", ("accuracy", "params")),
        ("regression", "mae, latency", ("mae", "latency")),
    ],
)
def test_objectives_are_parsed(task, spec, expected):
    assert metrics.parse_objectives(task, spec) == expected


@pytest.mark.parametrize("spec", ["params", "accuracy,flops", "mae", "accuracy,params,latency"])
def test_bad_objectives_are_user_errors(spec):
    with pytest.raises(UserError, match="use accuracy, accuracy,params or accuracy,latency"):
        metrics.parse_objectives("binary", spec)


def test_accuracy_and_params_study_logs_its_front(tiny_data, stores, tmp_path):
    cfg = engine.SearchJob(
        dataset="imdb", space=space_file(tmp_path, SPACE), n_trials=6, objective="accuracy,params"
    )
    outcome = engine.search(cfg)
    study = outcome.study
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert len(study.trials) == 6 and all(len(t.values) == 2 for t in study.trials)
    # the front from the trials' values: no other trial is as accurate with as few params
    # and better on one of the two
    values = {t.number: tuple(t.values) for t in study.trials}

    def dominated(a: tuple, b: tuple) -> bool:  # b dominates a
        return b[0] >= a[0] and b[1] <= a[1] and b != a

    front = sorted(
        n for n, v in values.items() if not any(dominated(v, w) for w in values.values())
    )
    assert 0 < len(front) < 6, values  # these trials have dominated ones: a front to find
    assert sorted(t.number for t in study.best_trials) == front
    marked = outcome.table.loc[outcome.table["pareto"].eq("✓"), "trial"]
    assert sorted(marked) == front and len(outcome.table) == 6
    parents, children = runs_of(stores["tracking"], "imdb")
    parent = parents[0]
    assert parent.data.tags["pareto_trials"] == ",".join(map(str, front))
    client = MlflowClient(tracking_uri=stores["tracking"])
    assert "pareto_front.png" in artifacts(client, parent.info.run_id)
    for run in children:  # the second objective is the logged parameter count
        trial = study.trials[int(run.data.tags["trial_number"])]
        assert trial.values == [
            run.data.metrics["final_val_accuracy"],
            float(run.data.tags["n_params"]),
        ]
    export = CliRunner().invoke(app, ["export", "imdb"])
    assert export.exit_code == 0, export.output
    assert f"Pareto front: {len(front)} of 6 completed trials" in export.output
    rows = [line for line in export.output.splitlines() if line.startswith("|")][2:]
    assert len(rows) == len(front)


def test_latency_objective_and_resume_with_other_objectives(tiny_data, stores, tmp_path):
    space = space_file(tmp_path, SPACE)
    cfg = engine.SearchJob(dataset="imdb", space=space, n_trials=2, objective="accuracy,latency")
    study = engine.search(cfg).study
    _, children = runs_of(stores["tracking"], "imdb")
    latencies = sorted(float(r.data.tags["latency_ms"]) for r in children)
    assert sorted(t.values[1] for t in study.trials) == latencies and latencies[0] > 0
    args = ["search", "imdb", "--space", str(space), "--n-trials", "3"]
    result = CliRunner().invoke(app, args)  # same study name, one objective
    assert result.exit_code == 2
    assert "exists with other objectives or directions" in result.output
