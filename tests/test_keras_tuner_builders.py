"""Keras Tuner's `build_model(hp)`, unchanged: `hp` asks the Optuna trial as the model is
built; the recipe trial takes each call's default; the values are logged and exported
under the user's names."""

from __future__ import annotations

import math

import keras
import mlflow
import optuna
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

import pipeline
from pipeline import hyperparameters, params
from pipeline.cli import app
from pipeline.hyperparameters import HyperParameters, given_or_default, takes_hp
from tests.test_custom_models import write_texts

# Keras Tuner's "Getting started" model, as its documentation writes it (for two classes of
# short texts instead of MNIST's ten digits): a tuned layer count, each layer's units tuned
# separately, a Boolean dropout and a log-scaled learning rate, compiled by the user.
KERAS_TUNER_MODEL = """
import keras
from keras import layers


def build_model(hp):
    model = keras.Sequential()
    model.add(layers.Embedding(input_dim=200, output_dim=8))
    model.add(layers.GlobalAveragePooling1D())
    # Tune the number of layers.
    for i in range(hp.Int("num_layers", 1, 3)):
        model.add(
            layers.Dense(
                # Tune number of units separately.
                units=hp.Int(f"units_{i}", min_value=4, max_value=32, step=4),
                activation=hp.Choice("activation", ["relu", "tanh"]),
            )
        )
    if hp.Boolean("dropout"):
        model.add(layers.Dropout(rate=0.25))
    model.add(layers.Dense(1, activation="sigmoid"))
    learning_rate = hp.Float("lr", min_value=1e-4, max_value=1e-2, sampling="log")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    return model
"""
SPACE = {
    "family": "custom",
    "builder": "kt_model.py:build_model",
    "representation": "token_ids",
    "defaults": {"max_tokens": 200, "sequence_length": 12, "epochs": 2, "batch_size": 16},
}
NAMES = {"num_layers", "units_0", "activation", "dropout", "lr"}


@pytest.fixture
def texts(tmp_path, monkeypatch) -> str:
    monkeypatch.setenv("PIPELINE_CACHE_DIR", str(tmp_path / "cache"))
    return write_texts(tmp_path / "reviews")


def keras_tuner_space(folder) -> str:
    folder.mkdir()
    (folder / "kt_model.py").write_text(KERAS_TUNER_MODEL)
    (folder / "kt.yaml").write_text(yaml.safe_dump(SPACE))
    return str(folder / "kt.yaml")


# --- hp, answered without a search ---------------------------------------------------------


def test_hp_answers_each_calls_default_or_the_value_given():
    hp = HyperParameters(given_or_default({"units": 64}))
    assert hp.Int("units", 8, 128, step=8) == 64  # given
    assert hp.Int("layers", 1, 3) == 1  # Keras Tuner's default: the low end
    assert hp.Float("lr", 1e-4, 1e-2, sampling="log", default=1e-3) == 1e-3
    assert hp.Choice("act", ["tanh", "relu"]) == "tanh"  # the first choice
    assert hp.Boolean("dropout") is False
    assert hp.Fixed("width", 7) == 7
    assert hp.Int("units", 1, 2) == 64  # a name asked again keeps its first answer
    assert hp.values == {
        "units": 64,
        "layers": 1,
        "lr": 1e-3,
        "act": "tanh",
        "dropout": False,
        "width": 7,
    }
    assert hp.get("act") == "tanh" and hp["units"] == 64 and "lr" in hp


def test_a_conditional_scope_asks_only_while_its_parent_has_one_of_its_values():
    asked = []

    def answer(question, default):
        asked.append(question.name)
        return {"model": "mlp"}.get(question.name, default)

    hp = HyperParameters(answer)
    hp.Choice("model", ["cnn", "mlp"])
    with hp.conditional_scope("model", ["cnn"]):
        assert hp.Int("filters", 8, 64) is None  # inactive: not asked, None as in Keras Tuner
    with hp.conditional_scope("model", "mlp"):
        assert hp.Int("units", 8, 64) == 8
    assert hp.Float("rate", 0.0, 0.5, parent_name="model", parent_values=["cnn"]) is None
    assert asked == ["model", "units"] and "filters" not in hp.values
    with (
        pytest.raises(ValueError, match="declare 'later' before it"),
        hp.conditional_scope("later", [1]),
    ):
        pass


def test_keras_tuners_log_step_multiplies_and_becomes_choices_under_the_same_name():
    questions = {}

    def answer(question, default):
        questions[question.name] = question
        return default

    hp = HyperParameters(answer)
    assert hp.Int("units", 8, 100, step=2, sampling="log") == 8
    assert questions["units"].kind == "categorical" and questions["units"].choices == (
        8,
        16,
        32,
        64,
    )
    hp.Float("lr", 1e-3, 1.0, sampling="log")
    assert questions["lr"].kind == "float" and questions["lr"].log is True
    with pytest.raises(ValueError, match="sampling 'reverse_log'"):
        hp.Float("x", 0.1, 1.0, sampling="reverse_log")
    with pytest.raises(ValueError, match="min_value > 0"):
        hp.Float("y", 0.0, 1.0, sampling="log")


@given(
    low=st.floats(1e-6, 1e3),
    ratio=st.floats(1.0, 1e6),
    step=st.floats(1.01, 100.0),
)
def test_a_log_step_lists_each_multiple_from_low_up_to_high(low, ratio, step):
    question = hyperparameters._numeric("x", "float", low, low * ratio, step, "log")
    values = question.choices
    assert values[0] == low and all(v <= low * ratio * (1 + 1e-9) for v in values)
    assert all(math.isclose(b / a, step) for a, b in zip(values, values[1:], strict=False))
    assert values[-1] * step > low * ratio * (1 - 1e-9)  # none left out at the top


def test_the_builder_form_is_told_by_its_signature():
    def build_model(hp):
        return hp

    def build(params, inputs):
        return inputs

    class HyperModel:
        def build(self, hp):
            return hp

    assert takes_hp(build_model) and takes_hp(HyperModel) and takes_hp(HyperModel())
    assert not takes_hp(build) and not takes_hp(lambda params, inputs, extra=1: inputs)


def test_hp_asks_the_optuna_trial_under_the_users_names():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    namespace: dict = {}
    exec(KERAS_TUNER_MODEL, namespace)
    for _ in range(4):
        trial = study.ask()
        build = hyperparameters.bind(
            namespace["build_model"], lambda question, _, trial=trial: params.ask(trial, question)
        )
        model = build({}, None)
        depth = trial.params["num_layers"]
        assert {f"units_{i}" for i in range(depth)} <= set(trial.params)
        assert set(trial.params) == NAMES - {"units_0"} | {f"units_{i}" for i in range(depth)}
        assert trial.params == build.values
        assert 1e-4 <= trial.params["lr"] <= 1e-2 and trial.params["units_0"] % 4 == 0
        assert (
            len([lay for lay in model.layers if isinstance(lay, keras.layers.Dense)]) == depth + 1
        )
        study.tell(trial, 0.5)
    assert isinstance(study.trials[0].distributions["lr"], optuna.distributions.FloatDistribution)
    assert study.trials[0].distributions["lr"].log


# --- searched and trained ------------------------------------------------------------------


def trial_params_in_mlflow(tracking: str, experiment: str) -> list[dict]:
    client = MlflowClient(tracking_uri=tracking)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    return [r.data.params for r in runs if "trial_number" in r.data.tags]


@pytest.mark.slow
def test_a_keras_tuner_model_runs_unmodified_from_the_command_line(texts, stores, tmp_path):
    space = keras_tuner_space(tmp_path / "kt")
    args = ["search", texts, "--space", space, "--n-trials", "4", "--pruner", "none"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert " activation " in result.stdout and " units " not in result.stdout  # the user's names
    study = optuna.load_study(study_name=f"{texts}-kt", storage=stores["storage"])
    trials = study.trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 4
    recipe = trials[0]  # each `hp` call's default, as Keras Tuner's first trial
    assert recipe.params == {
        "num_layers": 1,
        "units_0": 4,
        "activation": "relu",
        "dropout": False,
        "lr": 1e-4,
    }
    assert all(set(t.params) >= NAMES for t in trials)
    logged = trial_params_in_mlflow(stores["tracking"], texts)
    assert len(logged) == 4 and all(set(p) >= NAMES for p in logged)
    assert {p["lr"] for p in logged} == {str(t.params["lr"]) for t in trials}
    exported = CliRunner().invoke(app, ["export", texts, "--study", f"{texts}-kt", "--top", "4"])
    assert exported.exit_code == 0, exported.output
    header = next(line for line in exported.stdout.splitlines() if line.startswith("| "))
    varied = {n for n in NAMES if len({str(t.params.get(n)) for t in trials}) > 1}
    assert {"lr", "units_0"} <= varied and all(f" {name} " in header for name in varied)
    trained = CliRunner().invoke(
        app, ["train", texts, "--space", space, "units_1=8", "num_layers=2"]
    )
    assert trained.exit_code == 0, trained.output
    runs = mlflow.search_runs(
        experiment_names=[texts], filter_string="tags.mlflow.runName = 'train'"
    )
    assert len(runs) == 1  # the given values, and each other call's default
    row = runs.iloc[0]
    assert (row["params.num_layers"], row["params.units_0"], row["params.units_1"]) == (
        "2",
        "4",
        "8",
    )
    assert row["params.activation"] == "relu" and row["params.lr"] == "0.0001"


@pytest.mark.slow
def test_a_keras_tuner_model_and_a_hypermodel_run_from_python(texts, stores):
    namespace: dict = {}
    exec(KERAS_TUNER_MODEL, namespace)
    space = {key: value for key, value in SPACE.items() if key not in ("family", "builder")}
    found = pipeline.search(texts, space=space, builder=namespace["build_model"], n_trials=4)
    assert found.study.study_name == f"{texts}-build_model"
    assert sum(t.state.name in ("COMPLETE", "PRUNED") for t in found.study.trials) == 4
    assert all(set(t.params) >= NAMES for t in found.study.trials)

    class HyperModel:  # the shape of a keras_tuner.HyperModel subclass
        def build(self, hp):
            model = keras.Sequential(
                [
                    keras.layers.Embedding(200, hp.Choice("dim", [4, 8])),
                    keras.layers.GlobalAveragePooling1D(),
                    keras.layers.Dense(1, activation="sigmoid"),
                ]
            )
            model.compile(optimizer="adam", loss="binary_crossentropy")
            return model

    other = pipeline.search(texts, space=space, builder=HyperModel(), n_trials=1, study="hm")
    assert [t.params["dim"] for t in other.study.trials][0] == 4  # the recipe: the default


def test_the_users_compile_is_kept_with_the_tasks_metric_added():
    from pipeline import models

    def build_model(hp):
        model = keras.Sequential([keras.layers.Dense(1, activation="sigmoid")])
        rate = hp.Float("lr", 1e-4, 1e-2, sampling="log", default=1e-3)
        model.compile(optimizer=keras.optimizers.SGD(rate), loss="mse")
        return model

    values = {"loss": "binary_crossentropy", "optimizer": "adam", "batch_size": 8, "lr": 0.005}
    model = models.build_model(values, task="binary", n_features=3, builder=build_model)
    assert isinstance(model.optimizer, keras.optimizers.SGD)  # the user's, not the space's adam
    assert math.isclose(float(model.optimizer.learning_rate), 0.005, rel_tol=1e-6)
    assert model.loss == "mse" and [m.name for m in model.metrics][-1] == "compile_metrics"
    assert tuple(model.inputs[0].shape) == (None, 3)  # built on the data's rows
    with pytest.raises(ValueError, match="the model's compiled loss 'huber' does not fit"):

        def wrong(hp):
            model = build_model(hp)
            model.compile(optimizer="adam", loss="huber")
            return model

        models.build_model(values, task="binary", n_features=3, builder=wrong)


NOTEBOOK = """
import sys
from pathlib import Path

import keras  # a notebook's first cell: TensorFlow's own start-up notes are printed here
import numpy as np

import pipeline

print("--- the search starts", file=sys.stderr, flush=True)

for label, words in {"good": "great loved superb", "bad": "awful hated dull"}.items():
    Path("reviews", label).mkdir(parents=True)
    for i in range(30):
        Path("reviews", label, f"{i}.txt").write_text(f"{words} film number {i} {words}")


def build_model(hp):
    model = keras.Sequential(
        [
            keras.layers.Embedding(200, hp.Int("dim", 2, 8, step=2)),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model


texts = f"folder:{Path('reviews').resolve()}"
space = {"representation": "token_ids",
         "defaults": {"max_tokens": 200, "sequence_length": 12, "epochs": 2, "batch_size": 16}}
found = pipeline.search(texts, space=space, builder=build_model, n_trials=2, workers=2)
model = found.best_model()
rows = np.array([[2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]] * 5)
print("PREDICTED", model.predict(rows, verbose=0).shape, "BEST", sorted(found.best_params))
print("FRAME", len(found.trials), list(found.trials.columns)[:2])
"""


@pytest.mark.slow
def test_a_notebook_search_prints_the_summary_and_no_worker_start_up_notes(tmp_path):
    """As a notebook runs it (no script file that spawned workers would run again)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = os.environ | {
        "PYTHONPATH": str(root),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db",
        "PIPELINE_STORAGE": f"sqlite:///{tmp_path}/optuna.db",
        "PIPELINE_CACHE_DIR": str(tmp_path / "cache"),
    }
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    done = subprocess.run(
        [sys.executable, "-c", NOTEBOOK], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Top 2 by val_accuracy (the settings that vary):" in done.stdout
    assert "Best model: models:/" in done.stdout
    assert (
        "PREDICTED (5, 1) BEST ['dim']" in done.stdout and "FRAME 2 ['trial', 'dim']" in done.stdout
    )
    notes = ("cudart_stub", "cuInit", "cpu_feature_guard", "oneDNN", "absl::InitializeLog")
    after = done.stderr.split("--- the search starts", 1)[1]
    assert [line for line in after.splitlines() if any(n in line for n in notes)] == []
