"""Searches start from what is known (the recipe, seed tables, other studies), score each
trial on its best epoch, and end with a summary a person can read."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from pipeline import engine, params, summary
from pipeline.cli import app
from pipeline.datasets import load_dataset
from pipeline.engine import planner, studies
from pipeline.errors import UserError
from pipeline.evaluation import evaluate
from pipeline.training import train_and_evaluate
from tests.conftest import TINY_SPACE, artifacts, runs_of, space_file
from tests.test_reproduce import table_file


def enqueued(study: optuna.Study) -> list[str]:
    return [t.user_attrs.get("enqueued", "") for t in study.trials]


def test_a_new_study_runs_the_recipe_first_and_once(tiny_data, stores, tmp_path):
    space = space_file(tmp_path)
    options = engine.SearchJob(dataset="imdb", space=space, n_trials=2, pruner="none")
    study = engine.search(options).study
    assert enqueued(study) == ["defaults", ""]
    assert {k: study.trials[0].params[k] for k in ("n_layers", "units_1")} == {
        "n_layers": 1,
        "units_1": 8,
    }
    parents, children = runs_of(stores["tracking"], "imdb")
    assert parents[0].data.tags["enqueued"] == "defaults"
    recipe = next(c for c in children if c.data.tags["trial_number"] == "0")
    assert recipe.data.params["units"] == "8" and recipe.data.params["learning_rate"] == "0.01"
    again = engine.search(engine.SearchJob(dataset="imdb", space=space, n_trials=3, pruner="none"))
    assert enqueued(again.study) == ["defaults", "", ""]  # not queued a second time
    parents = runs_of(stores["tracking"], "imdb")[0]
    assert sorted(str(p.data.tags.get("enqueued")) for p in parents) == ["None", "defaults"]


def test_warm_start_from_a_seed_table_then_from_a_study(tiny_data, stores, tmp_path):
    table = str(table_file(tmp_path))
    options = engine.SearchJob(
        dataset="imdb", space=space_file(tmp_path), n_trials=3, pruner="none", warm_start=(table,)
    )
    study = engine.search(options).study
    assert enqueued(study) == ["defaults", "tiny-imdb row 1", "tiny-imdb row 2"]
    _, children = runs_of(stores["tracking"], "imdb")
    by_number = {int(c.data.tags["trial_number"]): c.data.params for c in children}
    assert (by_number[1]["units"], by_number[1]["epochs"], by_number[1]["loss"]) == (
        "8",
        "2",
        "binary_crossentropy",
    )
    assert (by_number[2]["units"], by_number[2]["loss"]) == ("8,4", "mse")  # the row, exactly
    parent = runs_of(stores["tracking"], "imdb")[0][0]
    assert parent.data.tags["enqueued"] == "defaults; tiny-imdb row 1; tiny-imdb row 2"

    best = sorted(study.trials, key=lambda t: -t.value)
    other = engine.SearchJob(
        dataset="imdb",
        space=space_file(tmp_path),
        n_trials=2,
        pruner="none",
        study="other",
        warm_start=("study:imdb",),
    )
    second = engine.search(other).study
    assert enqueued(second)[:2] == ["defaults", f"study imdb trial {best[0].number}"]
    assert second.trials[1].params == best[0].params


def test_warm_start_in_the_space_file_and_its_errors(tiny_data, stores, tmp_path):
    raw = {**TINY_SPACE, "warm_start": [{"units": [16, 4], "n_layers": 2}]}
    plan = planner.search_plan(
        engine.SearchJob(dataset="imdb", space=space_file(tmp_path, raw), n_trials=2)
    )
    assert [k.source for k in plan.trials.known] == ["defaults", "warm_start[1]"]
    assert plan.trials.known[1].trial_params == {"n_layers": 2, "units_1": 16, "units_2": 4}
    bad = {**TINY_SPACE, "warm_start": [{"layers": 2}]}
    with pytest.raises(UserError, match=r"warm_start\[1\]\.layers: unknown key"):
        planner.search_plan(engine.SearchJob(dataset="imdb", space=space_file(tmp_path, bad)))
    for warm, message in (
        ("study:nope", "--warm-start study:nope: no such study"),
        ("book-boston", "--warm-start book-boston: a table of boston_housing, not imdb"),
    ):
        with pytest.raises(UserError, match=message):
            planner.search_plan(
                engine.SearchJob(dataset="imdb", space=space_file(tmp_path), warm_start=(warm,))
            )
    grid = engine.SearchJob(
        dataset="imdb", space=space_file(tmp_path), sampler="grid", warm_start=("x",)
    )
    with pytest.raises(UserError, match="--warm-start needs the tpe or random sampler"):
        planner.search_plan(grid)


def test_trial_params_keep_only_what_the_space_can_sample(tmp_path):
    from pipeline import spaces

    space = spaces.load(space_file(tmp_path), task="binary")  # n_layers 1-2, units 4-16
    config = {"units": [8, 32], "activation": "elu", "epochs": 3}
    assert params.trial_params(space, config) == {"n_layers": 2, "units_1": 8}


def test_the_best_epoch_is_kept_and_scored(tiny_data):
    data = load_dataset("imdb")
    values = {"units": [8], "loss": "binary_crossentropy", "epochs": 8, "batch_size": 8}
    values |= {"optimizer": "adam", "learning_rate": 0.05}  # overfits 30 reviews fast
    result = train_and_evaluate(values, data, seed=1, keep_best=True)
    history = result.history["val_loss"]
    accuracy = result.history["val_accuracy"]
    assert result.best_epoch == int(np.argmax(accuracy)) + 1
    assert result.val_value == accuracy[result.best_epoch - 1] == max(accuracy)
    kept, _ = evaluate(result.model, data.val.x, data.val.y, "binary")
    assert kept["accuracy"] == pytest.approx(accuracy[result.best_epoch - 1])
    assert kept["loss"] == pytest.approx(history[result.best_epoch - 1], rel=1e-4)
    last = train_and_evaluate(values, data, seed=1)
    assert last.best_epoch == last.epochs_run and last.val_value == last.history["val_accuracy"][-1]


def test_k_fold_keeps_the_epoch_best_on_the_mean_of_folds(tiny_data):
    data = load_dataset("boston_housing")
    values = {"units": [8], "loss": "mse", "epochs": 6, "batch_size": 16, "learning_rate": 0.02}
    result = train_and_evaluate(values, data, seed=0, keep_best=True)
    mean = result.history["val_mae"]
    assert result.best_epoch == int(np.argmin(mean)) + 1
    assert result.val_value == pytest.approx(min(mean))
    assert np.mean(result.fold_values) == pytest.approx(result.val_value, rel=1e-5)
    assert type(result.model.get_layer("output")).__name__ == "Average"  # of the 4 folds
    tested, _ = evaluate(result.model, data.test.x, data.test.y, "regression")
    assert tested["mae"] == pytest.approx(result.test["test_mae"])
    retrained = train_and_evaluate(values, data, seed=0)  # a seed table's row: seed 004's way
    assert type(retrained.model.get_layer("output")).__name__ == "Dense"


def test_tpe_arguments_follow_the_budget():
    arguments = studies.tpe_arguments(30, 1)
    assert arguments["n_startup_trials"] == 5 and arguments["constant_liar"] is False
    assert arguments["multivariate"] is True and arguments["group"] is True
    assert studies.tpe_arguments(100, 4)["n_startup_trials"] == 10
    assert studies.tpe_arguments(100, 4)["constant_liar"] is True
    assert studies.tpe_arguments(6, 1)["n_startup_trials"] == 4


def test_batches_are_capped_on_small_data(tiny_data, stores, tmp_path):
    assert params.cap_batch({"batch_size": 512}, 300) == {"batch_size": 37}
    assert params.cap_batch({"batch_size": 16}, 300) == {"batch_size": 16}
    engine.search(engine.SearchJob(dataset="imdb", space=space_file(tmp_path), n_trials=1))
    _, children = runs_of(stores["tracking"], "imdb")
    assert children[0].data.params["batch_size"] == "8"  # 30 training reviews: at most 8


def test_the_summary_fits_a_terminal(tiny_data, stores, tmp_path):
    raw = {
        **TINY_SPACE,
        "search": {**TINY_SPACE["search"], "dropout": {"type": "float", "low": 0.0, "high": 0.5}},
    }
    args = ["search", "imdb", "--space", str(space_file(tmp_path, raw)), "--n-trials", "4"]
    result = CliRunner().invoke(app, [*args, "--pruner", "none"])
    assert result.exit_code == 0, result.output
    text = result.output[result.output.index("study 'imdb'") :]
    lines = [line for line in text.splitlines() if "http" not in line]  # a link stays whole
    assert max(len(line) for line in lines) <= summary.WIDTH
    assert "\nrecipe trial 0 " in text and "\nbest   trial " in text
    assert "Top 4 by val_accuracy" in text and "| trial |" in text.replace(
        "|   trial |", "| trial |"
    )
    assert "pipeline export 'imdb'" in text
    parent = runs_of(stores["tracking"], "imdb")[0][0]
    client = MlflowClient(tracking_uri=stores["tracking"])
    assert "best_so_far.png" in artifacts(client, parent.info.run_id)


def test_reproduce_trains_the_epochs_a_row_names(tiny_data, stores, tmp_path):
    result = CliRunner().invoke(app, ["reproduce", str(table_file(tmp_path)), "--seeds", "1"])
    assert result.exit_code == 0, result.output
    _, children = runs_of(stores["tracking"], "imdb")
    epochs = {c.data.params["units"]: c.data.tags for c in children}
    assert epochs["8"]["epochs_run"] == epochs["8"]["best_epoch"] == "2"
    assert epochs["8,4"]["epochs_run"] == epochs["8,4"]["best_epoch"] == "1"


def test_a_keras_model_is_left_as_trained_without_keep_best(tiny_data):
    data = load_dataset("imdb")
    values = {"units": [4], "loss": "binary_crossentropy", "epochs": 2, "batch_size": 8}
    result = train_and_evaluate(values, data, seed=2)
    assert isinstance(result.model, keras.Model)
    final, _ = evaluate(result.model, data.val.x, data.val.y, "binary")
    assert final["accuracy"] == pytest.approx(result.history["val_accuracy"][-1])


def test_the_default_spaces_hold_their_recipe():
    from pipeline import spaces

    for name, task in (
        ("imdb", "binary"),
        ("reuters", "multiclass"),
        ("boston_housing", "regression"),
    ):
        space = spaces.load(f"search_spaces/{name}.yaml", task=task)
        config = params.for_family(dict(space.defaults))
        sampled = {p.name for p in space.params if p.kind != "fixed"}
        found = params.trial_params(space, config)
        assert set(found) >= (sampled - {"units"}), name  # every searched value of the recipe
        assert (
            yaml.safe_load(Path(f"search_spaces/{name}.yaml").read_text())["defaults"]["epochs"]
            == found["epochs"]
        )


def test_the_blog_table_warm_starts_the_default_imdb_space(stores):
    plan = planner.search_plan(engine.SearchJob(dataset="imdb", warm_start=("blog-imdb",)))
    known = plan.trials.known
    assert [k.source for k in known[:3]] == ["defaults", "blog-imdb row 1", "blog-imdb row 2"]
    assert len(known) == 17
    row4 = known[4]  # 16-16-16, 4 epochs: deeper than the defaults' 2 layers
    assert row4.config["units"] == [16, 16, 16] and row4.config["n_layers"] == 3
    assert {k: row4.trial_params[k] for k in ("n_layers", "units_3", "epochs")} == {
        "n_layers": 3,
        "units_3": 16,
        "epochs": 4,
    }
    assert "units_5" not in known[5].trial_params  # 5 layers: outside the space's 1-3
    assert known[5].config["units"] == [16] * 5
