"""Search-space files: validation of every bad case, sampling, and the grid."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import optuna
import pytest
import yaml

from pipeline import params as sampling
from pipeline import spaces
from pipeline.errors import UserError

GOOD = {
    "dataset": "imdb",
    "defaults": {"units": 16, "loss": "binary_crossentropy", "epochs": 4, "batch_size": 512},
    "search": {
        "n_layers": {"type": "int", "low": 1, "high": 3},
        "units": {"type": "int", "low": 4, "high": 128, "log": True, "per_layer": True},
        "optimizer": {"type": "categorical", "choices": ["rmsprop", "adam"]},
        "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        "batch_size": 256,
    },
}


def write(tmp_path: Path, raw) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(raw if isinstance(raw, str) else yaml.safe_dump(raw))
    return path


def changed(path: list[str], value) -> dict:
    raw = yaml.safe_load(yaml.safe_dump(GOOD))
    node = raw
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return raw


def test_project_spaces_load_for_their_task():
    for name, task in (
        ("imdb", "binary"),
        ("reuters", "multiclass"),
        ("boston_housing", "regression"),
    ):
        space = spaces.load(Path("search_spaces") / f"{name}.yaml", task=task)
        assert space.dataset == name
        assert {
            "n_layers",
            "units",
            "activation",
            "loss",
            "optimizer",
            "learning_rate",
            "epochs",
            "batch_size",
            "dropout",
        } <= set(space.names())


def test_space_is_frozen(tmp_path):
    space = spaces.load(write(tmp_path, GOOD), task="binary")
    with pytest.raises(dataclasses.FrozenInstanceError):
        space.dataset = "reuters"
    with pytest.raises(TypeError):
        space.defaults["units"] = 3
    assert space.names()[0] == "n_layers"  # layers are sampled before their units


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (changed(["colour"], "blue"), "colour: unknown key"),
        (
            changed(["search", "layers"], {"type": "int", "low": 1, "high": 2}),
            "search.layers: unknown key",
        ),
        (changed(["search", "n_layers", "lo"], 1), "search.n_layers.lo: unknown key"),
        (changed(["search", "n_layers", "low"], "one"), "search.n_layers.low: expected int"),
        (changed(["search", "n_layers", "low"], 5), "search.n_layers.low: low (5) is greater"),
        (
            changed(["search", "optimizer", "choices"], []),
            "search.optimizer.choices: expected a non-empty list",
        ),
        (
            changed(["search", "optimizer", "choices"], ["adam", "adamw"]),
            "search.optimizer.choices[1]: unknown optimizer 'adamw'",
        ),
        (changed(["defaults", "loss"], "hinge"), "defaults.loss: unknown loss 'hinge'"),
        (
            changed(["defaults", "loss"], "mae"),
            "defaults.loss: unknown loss 'mae'; expected one of binary_crossentropy, mse",
        ),
        (changed(["search", "n_layers", "type"], "range"), "search.n_layers.type: expected int"),
        (
            changed(["search", "learning_rate", "low"], 0.0),
            "search.learning_rate.low: out of range: 0.0 (greater than 0)",
        ),
        (
            changed(["search", "dropout"], {"type": "float", "low": 0.0, "high": 0.5, "log": True}),
            "search.dropout.log: must be true or false, and true needs low > 0",
        ),
        (changed(["defaults", "epochs"], 0), "defaults.epochs: out of range"),
        (
            changed(["search", "dropout"], {"type": "int", "low": 0, "high": 1}),
            "search.dropout.type: dropout is a float",
        ),
        ("search: [unclosed", "not valid YAML"),
        ("- a list", "(top level): expected a mapping"),
    ],
)
def test_bad_spaces_give_one_line_naming_file_and_key(tmp_path, raw, message):
    path = write(tmp_path, raw)
    with pytest.raises(UserError) as caught:
        spaces.load(path, task="binary")
    text = str(caught.value)
    assert text.startswith(f"{path}: ")
    assert message in text
    assert "\n" not in text


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="cannot read search space"):
        spaces.load(tmp_path / "nope.yaml")


def test_missing_required_setting(tmp_path):
    raw = changed(["defaults"], {"units": 16})
    with pytest.raises(UserError, match="defaults: missing loss, epochs "):
        spaces.load(write(tmp_path, raw))
    with pytest.raises(UserError, match="defaults: missing epochs "):
        spaces.load(write(tmp_path, raw), task="binary")  # the loss follows the task


@pytest.mark.parametrize(
    ("task", "loss"),
    [("binary", "binary_crossentropy"), ("multiclass", "sparse_categorical_crossentropy")],
)
def test_a_space_without_loss_gets_the_tasks(tmp_path, task, loss):
    raw = changed(["defaults"], {"units": 16, "epochs": 2, "batch_size": 8})
    assert spaces.load(write(tmp_path, raw), task=task).defaults["loss"] == loss


def test_suggest_asks_units_only_for_layers_that_exist(tmp_path):
    space = spaces.load(write(tmp_path, GOOD), task="binary")
    trial = optuna.trial.FixedTrial(
        {"n_layers": 2, "units_1": 8, "units_2": 32, "optimizer": "adam", "learning_rate": 0.003}
    )
    params = sampling.suggest(trial, space)
    assert params == {
        "units": [8, 32],
        "loss": "binary_crossentropy",
        "epochs": 4,
        "batch_size": 256,
        "n_layers": 2,
        "optimizer": "adam",
        "learning_rate": 0.003,
    }


def test_suggest_in_a_real_study_respects_ranges(tmp_path):
    space = spaces.load(write(tmp_path, GOOD), task="binary")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(20):
        trial = study.ask()
        params = sampling.suggest(trial, space)
        assert len(params["units"]) == params["n_layers"] <= 3
        assert all(4 <= u <= 128 for u in params["units"])
        assert set(trial.params) == {"n_layers", "optimizer", "learning_rate"} | {
            f"units_{i}" for i in range(1, params["n_layers"] + 1)
        }
        study.tell(trial, 0.5)


def test_grid_enumerates_choices_and_stepped_ints(tmp_path):
    raw = {
        "defaults": GOOD["defaults"],
        "search": {
            "n_layers": {"type": "int", "low": 1, "high": 2},
            "units": {"type": "categorical", "choices": [8, 16], "per_layer": True},
            "epochs": {"type": "int", "low": 2, "high": 6, "step": 2},
        },
    }
    grid = sampling.grid(spaces.load(write(tmp_path, raw), task="binary"))
    assert grid == {"n_layers": [1, 2], "units_1": [8, 16], "units_2": [8, 16], "epochs": [2, 4, 6]}
    floats = changed(["search", "optimizer"], "adam")
    with pytest.raises(UserError, match="the grid sampler needs a step"):
        sampling.grid(spaces.load(write(tmp_path, floats), task="binary"))


def test_naive_bayes_output_mode_is_for_two_classes(tmp_path):
    raw = changed(["defaults"], {"units": 16, "epochs": 2, "batch_size": 8, "output_mode": "nb"})
    assert spaces.load(write(tmp_path, raw), task="binary").defaults["output_mode"] == "nb"
    with pytest.raises(UserError, match="output_mode nb weighs terms for two classes"):
        spaces.load(write(tmp_path, raw), task="multiclass")
