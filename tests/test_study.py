"""Studies end to end on tiny data: Optuna trials, MLflow parent/child runs, resume, failures."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from pipeline import engine
from pipeline.cli import app
from tests.conftest import TINY_SPACE, artifacts, runs_of, space_file


def test_search_logs_parent_and_children(tiny_data, stores, tmp_path):
    cfg = engine.SearchJob(dataset="imdb", space=space_file(tmp_path), n_trials=2, pruner="none")
    outcome = engine.search(cfg)
    assert outcome.ran == 2
    assert [t.state for t in outcome.study.trials] == [optuna.trial.TrialState.COMPLETE] * 2
    client = MlflowClient(tracking_uri=stores["tracking"])
    parents, children = runs_of(stores["tracking"], "imdb")
    assert len(parents) == 1 and len(children) == 2
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    by_number = {int(c.data.tags["trial_number"]): c for c in children}
    for trial in outcome.study.trials:
        run = by_number[trial.number]
        assert run.info.status == "FINISHED" and run.data.tags["trial_state"] == "COMPLETE"
        assert run.data.tags["study"] == "imdb" and run.data.tags["sampler"] == "tpe"
        units = [trial.params[f"units_{i}"] for i in range(1, trial.params["n_layers"] + 1)]
        assert run.data.params["units"] == ",".join(map(str, units))
        assert run.data.params["units_1"] == str(units[0])
        assert run.data.params["activation"] == trial.params["activation"]
        history = client.get_metric_history(run.info.run_id, "val_accuracy")
        assert [m.step for m in history] == [1]
        assert history[0].value == pytest.approx(trial.value)
        assert 0.0 <= run.data.metrics["test_accuracy"] <= 1.0
        assert run.data.metrics["test_accuracy"] == pytest.approx(trial.user_attrs["test_accuracy"])
        assert int(run.data.tags["n_params"]) > 0
        assert {
            "learning_curves.png",
            "history.csv",
            "model_summary.txt",
            "confusion_matrix.png",
        } <= artifacts(client, run.info.run_id)
    plots = {"optimization_history.png", "param_importances.png"}
    assert {"top_trials.md", "best_model.keras"} | plots <= artifacts(client, parent.info.run_id)
    assert parent.data.metrics["best_value"] == pytest.approx(outcome.study.best_value)


def test_second_invocation_resumes_the_study(tiny_data, stores, tmp_path):
    space = space_file(tmp_path)
    engine.search(engine.SearchJob(dataset="imdb", space=space, n_trials=2, pruner="none"))
    outcome = engine.search(
        engine.SearchJob(dataset="imdb", space=space, n_trials=3, pruner="none")
    )
    assert outcome.ran == 1
    assert [t.number for t in outcome.study.trials] == [0, 1, 2]
    parents, children = runs_of(stores["tracking"], "imdb")
    assert len(parents) == 2
    assert sorted(int(c.data.tags["trial_number"]) for c in children) == [0, 1, 2]
    nothing = engine.search(engine.SearchJob(dataset="imdb", space=space, n_trials=3))
    assert nothing.ran == 0 and len(nothing.study.trials) == 3
    assert len(runs_of(stores["tracking"], "imdb")[0]) == 2  # no empty parent run


def test_diverging_trial_fails_and_the_study_goes_on(tiny_data, stores, tmp_path):
    raw = {
        "defaults": {"units": 8, "loss": "mse", "epochs": 3, "batch_size": 8, "optimizer": "sgd"},
        "search": {"learning_rate": {"type": "categorical", "choices": [1.0e6, 0.001]}},
    }
    cfg = engine.SearchJob(
        dataset="boston_housing",
        space=space_file(tmp_path, raw),
        n_trials=2,
        sampler="grid",
        pruner="none",
    )
    outcome = engine.search(cfg)
    states = {t.params["learning_rate"]: t.state for t in outcome.study.trials}
    assert states == {1.0e6: optuna.trial.TrialState.FAIL, 0.001: optuna.trial.TrialState.COMPLETE}
    _, children = runs_of(stores["tracking"], "boston_housing")
    failed = [c for c in children if c.data.params["learning_rate"] == "1000000.0"]
    assert failed[0].info.status == "FAILED"
    assert "loss became nan at epoch" in failed[0].data.tags["error"]
    done = [c for c in children if c.info.status == "FINISHED"][0]
    assert math.isfinite(done.data.metrics["test_mae"])
    assert {"fold_1_val_mae", "fold_4_val_mae"} <= set(done.data.metrics)


def test_pruned_trials_are_marked(tiny_data, stores, tmp_path):
    raw = {
        "defaults": {**TINY_SPACE["defaults"], "epochs": 4},
        "search": {"learning_rate": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True}},
    }
    cfg = engine.SearchJob(dataset="imdb", space=space_file(tmp_path, raw), n_trials=12, seed=3)
    outcome = engine.search(cfg)
    pruned = [t for t in outcome.study.trials if t.state == optuna.trial.TrialState.PRUNED]
    _, children = runs_of(stores["tracking"], "imdb")
    marked = [c for c in children if c.data.tags["trial_state"] == "PRUNED"]
    assert len(pruned) >= 1 and len(marked) == len(pruned)
    for run in marked:
        assert run.info.status == "FINISHED" and "test_accuracy" not in run.data.metrics
        assert run.data.tags["pruned"] == "true"
        assert int(run.data.tags["epochs_run"]) < 4 and "epochs_run" not in run.data.metrics
    unmarked = [c for c in children if c.data.tags["trial_state"] == "COMPLETE"]
    assert unmarked and all("pruned" not in c.data.tags for c in unmarked)


def test_cli_search_end_to_end(tiny_data, stores, tmp_path):
    space = space_file(tmp_path)
    args = ["search", "imdb", "--space", str(space), "--n-trials", "2", "--pruner", "none"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "ran 2 trials now, 2 finished in all" in result.output
    assert "| trial |" in result.output.replace("|   trial |", "| trial |")
    result = CliRunner().invoke(app, [*args[:-3], "3", "--pruner", "none"])
    assert result.exit_code == 0, result.output
    assert "ran 1 trials now, 3 finished in all" in result.output
    assert len(runs_of(stores["tracking"], "imdb")[1]) == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "mnist"], "unknown dataset 'mnist'"),
        (["search", "imdb", "--n-trials", "0"], "--n-trials must be at least 1"),
        (["search", "imdb", "--sampler", "cmaes"], "unknown sampler 'cmaes'"),
        (["search", "imdb", "--space", "nope.yaml"], "search space nope.yaml not found"),
        (
            ["search", "imdb", "--storage", "mysql+nodriver://u:secret@h/db"],
            "cannot open Optuna storage mysql+nodriver://u:***@h/db",
        ),
        (["search", "imdb", "--space", "search_spaces/reuters.yaml"], "unknown loss"),
        (["train", "imdb", "units"], "expected key=value"),
        (["train", "imdb", "optimizer=adamw"], "arguments: optimizer: unknown optimizer"),
    ],
)
def test_cli_user_errors_exit_2_with_one_line(tiny_data, stores, args, message):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "secret" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not Path(stores["storage"].removeprefix("sqlite:///")).exists()


def test_cli_train_one_configuration(tiny_data, stores):
    result = CliRunner().invoke(
        app, ["train", "boston_housing", "epochs=2", "units=8,4", "batch_size=16"]
    )
    assert result.exit_code == 0, result.output
    assert "val_mae=" in result.output and "test_mae=" in result.output
    parents, children = runs_of(stores["tracking"], "boston_housing")
    assert len(parents) == 1 and not children
    run = parents[0]
    assert run.data.params["units"] == "8,4" and run.data.tags["kind"] == "train"
    client = MlflowClient(tracking_uri=stores["tracking"])
    assert len(client.get_metric_history(run.info.run_id, "val_mae")) == 2
    assert "model.keras" in artifacts(client, run.info.run_id)


@pytest.mark.realdata
@pytest.mark.slow
def test_two_short_trials_on_real_imdb(real_data, stores, tmp_path):
    raw = {
        "defaults": {"units": 16, "loss": "binary_crossentropy", "epochs": 1, "batch_size": 512},
        "search": {"n_layers": {"type": "int", "low": 1, "high": 2}},
    }
    outcome = engine.search(
        engine.SearchJob(dataset="imdb", space=space_file(tmp_path, raw), n_trials=2, pruner="none")
    )
    values = [t.value for t in outcome.study.trials]
    assert len(values) == 2 and all(0.80 < v < 0.95 for v in values)
    _, children = runs_of(stores["tracking"], "imdb")
    assert all(0.80 < c.data.metrics["test_accuracy"] < 0.95 for c in children)


def test_search_over_the_text_representation(tiny_data, stores, tmp_path):
    raw = {
        "defaults": TINY_SPACE["defaults"],
        "search": {
            "ngrams": {"type": "categorical", "choices": [1, 2]},
            "output_mode": {"type": "categorical", "choices": ["multi_hot", "tf_idf"]},
        },
    }
    cfg = engine.SearchJob(
        dataset="imdb", space=space_file(tmp_path, raw), n_trials=4, sampler="grid", pruner="none"
    )
    outcome = engine.search(cfg)
    settings = {(t.params["ngrams"], t.params["output_mode"]) for t in outcome.study.trials}
    assert settings == {(1, "multi_hot"), (2, "multi_hot"), (1, "tf_idf"), (2, "tf_idf")}
    assert len(list((tmp_path / "cache").glob("imdb-*.npz"))) == 4  # built once per setting
    _, children = runs_of(stores["tracking"], "imdb")
    n_params = {
        (r.data.params["ngrams"], r.data.params["output_mode"]): int(r.data.tags["n_params"])
        for r in children
    }
    assert n_params[("2", "multi_hot")] > n_params[("1", "multi_hot")]  # bigrams add features
    assert n_params[("1", "tf_idf")] == n_params[("1", "multi_hot")]


def test_embedding_family_needs_text(tiny_data, stores, tmp_path):
    from pipeline.errors import UserError

    raw = {"defaults": {**TINY_SPACE["defaults"], "loss": "mse", "family": "embedding"}}
    cfg = engine.SearchJob(dataset="boston_housing", space=space_file(tmp_path, raw), n_trials=1)
    with pytest.raises(UserError, match="the embedding family needs a text dataset"):
        engine.search(cfg)


def test_representation_values_are_checked(tmp_path):
    from pipeline import spaces
    from pipeline.errors import UserError

    for key, value, problem in (
        ("output_mode", "binary", "unknown output_mode 'binary'"),
        ("with_title", "yes", "unknown with_title 'yes'"),
        ("ngrams", 4, "unknown ngrams 4"),
        ("max_tokens", 1, "out of range"),
        ("family", "cnn", "unknown family 'cnn'"),
        ("pooling", "sum", "unknown pooling 'sum'"),
        ("encoder", "no/such/savedmodel", "expected a SavedModel folder or hub URL"),
        ("embedding_dim", 0, "out of range"),
    ):
        raw = {"defaults": {**TINY_SPACE["defaults"], key: value}}
        with pytest.raises(UserError, match=problem):
            spaces.load(space_file(tmp_path, raw), task="binary")
