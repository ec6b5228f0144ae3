"""Ensembles end to end on tiny data: what every trial keeps (predictions, and a bundle
while among the best K), an ensemble registered in MLflow that reads raw input on each
task and averages its members, `pipeline ensemble`, and the export's weights."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import optuna
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from pipeline import engine, inference, tracking
from pipeline.cli import app
from pipeline.engine import ensembling, kept
from tests.conftest import TINY_SPACE, artifacts, space_file

RAW = {
    "imdb": pd.DataFrame({"text": ["A wonderful, moving film.", "Dull and far too long."]}),
    "reuters": pd.DataFrame({"text": ["Wheat exports rose.", "The bank cut its rates."]}),
}


def _space(dataset: str) -> dict:
    if dataset == "imdb":
        return TINY_SPACE
    loss = "categorical_crossentropy" if dataset == "reuters" else "mse"
    return {**TINY_SPACE, "defaults": {**TINY_SPACE["defaults"], "loss": loss}}


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["imdb", "reuters", "boston_housing"])
def test_an_ensemble_of_kept_trials_reads_raw_input_and_averages_its_members(
    dataset, tiny_data, stores, tmp_path
):
    job = engine.SearchJob(
        dataset=dataset,
        space=space_file(tmp_path, _space(dataset)),
        n_trials=3,
        pruner="none",
        keep=2,
    )
    outcome = engine.search(job)
    client = MlflowClient(stores["tracking"])
    tracker = tracking.Tracker(stores["tracking"])
    done = outcome.study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(done) == 3
    runs = {int(r["tags"]["trial_number"]): r for r in tracker.trial_runs(dataset, dataset)}
    # every completed trial kept its predictions; only the best two their bundle
    for run in runs.values():
        assert "predictions" in artifacts(client, run["run_id"])
    bundled = sorted(n for n, r in runs.items() if "model" in artifacts(client, r["run_id"]))
    best_two = sorted(t.number for t in sorted(done, key=_rank(outcome.study))[:2])
    assert bundled == best_two
    assert sorted(n for n, r in runs.items() if r["tags"].get("kept_model") == "true") == best_two

    with tempfile.TemporaryDirectory() as folder:
        found = kept.kept_predictions(tracker, runs[best_two[0]]["run_id"], Path(folder))
    n_val = 0
    if dataset == "boston_housing":  # out of fold: every training row, by the fold average
        assert str(found["member"]) == "fold-average"
        n_val = len(outcome.data.train)
    else:
        assert str(found["member"]) == "model"
        n_val = len(outcome.data.val)
    assert found["val_pred"].shape[0] == found["val_true"].shape[0] == n_val
    assert found["test_pred"].shape[0] == len(outcome.data.test)

    chosen = outcome.ensemble
    assert chosen is not None and chosen.candidates == 2
    assert chosen.best_trial == best_two[0] or chosen.best_trial in best_two
    both = dataclasses.replace(chosen, members={best_two[0]: 2, best_two[1]: 1})
    registered = ensembling.register(both, outcome.study, tracker, experiment=dataset)
    assert registered.model_uri is not None and registered.run_id is not None

    model = mlflow.pyfunc.load_model(registered.model_uri)
    predictor = model.unwrap_python_model().predictor
    assert isinstance(predictor, inference.EnsemblePredictor)
    assert predictor.weights == [2.0, 1.0]
    raw = RAW.get(dataset, predictor.example())
    out = model.predict(raw)
    members = [m.predict(raw) for m in predictor.members]
    if dataset == "boston_housing":
        expected = (2 * members[0]["value"] + members[1]["value"]) / 3
        assert np.allclose(out["value"], expected, atol=1e-5)
    else:
        columns = [c for c in out.columns if c.startswith("p_")]
        expected = (2 * members[0][columns].to_numpy() + members[1][columns].to_numpy()) / 3
        assert np.allclose(out[columns].to_numpy(), expected, atol=1e-5)
        assert list(out["label"]) == [columns[i][2:] for i in expected.argmax(axis=1)]
    run = client.get_run(registered.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["kind"] == "ensemble"
    assert run.data.tags["ensemble_members"] == f"{best_two[0]}:2,{best_two[1]}:1"


def _rank(study):
    sign = 1 if study.directions[0] == optuna.study.StudyDirection.MINIMIZE else -1
    return lambda t: (sign * t.values[0], t.number)


@pytest.mark.slow
def test_pipeline_ensemble_rebuilds_from_a_finished_study_and_export_shows_weights(
    tiny_data, stores, tmp_path
):
    space = space_file(tmp_path)
    engine.search(engine.SearchJob(dataset="imdb", space=space, n_trials=3, pruner="none"))
    runner = CliRunner()
    result = runner.invoke(app, ["ensemble", "imdb", "--size", "4"])
    assert result.exit_code == 0, result.output
    assert "(4 greedy picks)" in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("| ")]
    assert lines[1].startswith("| best trial") and lines[2].startswith("| ensemble")

    study = optuna.load_study(study_name="imdb", storage=stores["storage"])
    chosen = ensembling.from_record(study.user_attrs["ensemble"])
    assert chosen.size == 4 and sum(chosen.members.values()) <= 4
    tracker = tracking.Tracker(stores["tracking"])
    registered = ensembling.register(chosen, study, tracker, experiment="imdb")
    assert tracker.ensemble_members("imdb", "imdb") == chosen.members
    exported = runner.invoke(app, ["export", "imdb", "--format", "csv"])
    frame = pd.read_csv(pd.io.common.StringIO(exported.output))
    weights = dict(zip(frame["trial"], frame["ensemble_weight"], strict=True))
    total = sum(chosen.members.values())
    assert weights == {t: chosen.members.get(t, 0) / total for t in weights}
    assert registered.model_uri.startswith("models:/imdb/")


def test_pipeline_ensemble_refuses_in_one_line(tiny_data, stores):
    runner = CliRunner()
    missing = runner.invoke(app, ["ensemble", "nothing-here"])
    assert missing.exit_code == 2
    assert missing.stderr.strip().splitlines() == [
        f"error: no study 'nothing-here' in {stores['storage']}"
    ]
    zero = runner.invoke(app, ["ensemble", "imdb", "--size", "0"])
    assert zero.exit_code == 2 and "--size must be at least 1, got 0" in zero.stderr
