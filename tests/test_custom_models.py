"""A Keras model of the user's own: a build function in a file (or a notebook's), its own
keys in the search space, searched, reproduced, registered and served like the built-ins."""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import mlflow
import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

import pipeline
from pipeline import models
from pipeline.cli import app
from pipeline.errors import UserError

LAYERS = '''
import keras


@keras.saving.register_keras_serializable(package="mine")
class Scale(keras.layers.Layer):
    """A layer of the user's: a saved model of it loads only where this file is imported."""

    def __init__(self, factor=1.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x):
        return x * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}
'''
MODELS = """
import keras
from my_layers import Scale


def build(params, inputs):
    x = keras.layers.Embedding(params["max_tokens"], 8)(inputs)
    x = keras.layers.Conv1D(params["filters"], params["kernel_size"], activation="relu")(x)
    x = keras.layers.GlobalMaxPooling1D()(x)
    return Scale(params["scale"])(x)
"""
SPACE = {
    "description": "a Conv1D of the user's",
    "family": "custom",
    "builder": "my_models.py:build",
    "representation": "token_ids",
    "code": ["my_layers.py"],
    "defaults": {
        "max_tokens": 200,
        "sequence_length": 12,
        "filters": 4,
        "kernel_size": 3,
        "scale": 1.0,
        "loss": "binary_crossentropy",
        "optimizer": "adam",
        "learning_rate": 0.01,
        "epochs": 2,
        "batch_size": 16,
    },
    "search": {
        "filters": {"type": "int", "low": 2, "high": 8},
        "scale": {"type": "float", "low": 0.5, "high": 2.0},
    },
}
WORDS = {"good": "great wonderful loved superb", "bad": "awful boring hated dull"}


def write_texts(folder: Path, n: int = 30) -> str:
    for label, words in WORDS.items():
        (folder / label).mkdir(parents=True)
        for i in range(n):
            (folder / label / f"{i}.txt").write_text(f"{words} film number {i} {words}")
    return f"folder:{folder}"


def write_space(folder: Path, space: dict = SPACE, models_text: str = MODELS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "my_models.py").write_text(models_text)
    (folder / "my_layers.py").write_text(LAYERS)
    path = folder / "conv.yaml"
    path.write_text(yaml.safe_dump(space))
    return path


@pytest.fixture
def texts(tmp_path, monkeypatch) -> str:
    monkeypatch.setenv("PIPELINE_CACHE_DIR", str(tmp_path / "cache"))
    return write_texts(tmp_path / "reviews")


def trial_runs(tracking: str, experiment: str) -> list:
    client = MlflowClient(tracking_uri=tracking)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    return [r for r in runs if "trial_number" in r.data.tags]


@pytest.mark.slow
def test_a_custom_search_logs_its_keys_and_its_model_predicts_without_the_files(
    texts, stores, tmp_path
):
    space = write_space(tmp_path / "mine")
    args = ["search", texts, "--space", str(space), "--n-trials", "3", "--study", "conv"]
    result = CliRunner().invoke(app, [*args, "--pruner", "none"])
    assert result.exit_code == 0, result.output
    runs = trial_runs(stores["tracking"], texts)
    assert len(runs) == 3 and {r.info.status for r in runs} == {"FINISHED"}
    for run in runs:
        logged = run.data.params
        assert logged["family"] == "custom" and logged["representation"] == "token_ids"
        assert 2 <= int(logged["filters"]) <= 8 and 0.5 <= float(logged["scale"]) <= 2.0
        assert logged["kernel_size"] == "3" and "units" not in logged
        assert len(run.data.metrics) > 3  # curves and test figures
    history = MlflowClient(tracking_uri=stores["tracking"]).get_metric_history(
        runs[0].info.run_id, "val_accuracy"
    )
    assert [m.step for m in history] == [1, 2]
    exported = CliRunner().invoke(app, ["export", texts, "--study", "conv"])
    assert exported.exit_code == 0, exported.output
    header = [c.strip() for c in exported.output.splitlines()[0].strip("|").split("|")]
    assert {"filters", "scale"} <= set(header)
    assert len(exported.output.strip().splitlines()) == 5  # header, rule, three trials
    # the files gone from their place, a fresh process in another folder predicts raw text
    shutil.move(tmp_path / "mine", tmp_path / "moved-away")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "predict", "models:/conv/1", "great superb loved"]
        + ["awful dull hated", "--format", "json"],
        cwd=elsewhere,
        env={**os.environ, "MLFLOW_TRACKING_URI": stores["tracking"]},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(done.stdout)
    assert [r["label"] for r in rows] == ["good", "bad"]
    model = Path(mlflow.artifacts.download_artifacts("models:/conv/1", dst_path=str(tmp_path)))
    shipped = {p.name for p in (model / "code").glob("*.py")}
    assert shipped == {"my_models.py", "my_layers.py"}  # MLflow's code_paths


def build_in_a_cell(params, inputs):
    """A builder defined in the test, as in a notebook cell: it reaches worker processes
    pickled by value."""
    x = keras.layers.Embedding(params["max_tokens"], 8)(inputs)
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.layers.Dense(params["width"], activation="relu")(x)


NOTEBOOK_SPACE = {
    "representation": "token_ids",
    "defaults": {
        "max_tokens": 200,
        "sequence_length": 12,
        "width": 4,
        "loss": "binary_crossentropy",
        "optimizer": "adam",
        "learning_rate": 0.01,
        "epochs": 2,
        "batch_size": 16,
    },
    "search": {"width": {"type": "categorical", "choices": [2, 4, 8]}},
}


@pytest.mark.slow
def test_the_notebook_functions_search_with_workers_and_train(texts, stores):
    found = pipeline.search(
        texts,
        space=NOTEBOOK_SPACE,
        builder=build_in_a_cell,
        n_trials=4,
        workers=2,
        pruner="none",
        study="cell",
    )
    complete = found.study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(complete) == 4 and found.model_uri == "models:/cell/1"
    runs = trial_runs(stores["tracking"], texts)
    assert len(runs) == 4
    assert {r.data.tags["mlflow.parentRunId"] for r in runs} == {found.parent_run_id}
    assert {r.data.params["width"] for r in runs} <= {"2", "4", "8"}
    assert len({r.data.tags["worker_pid"] for r in runs}) == 2  # two processes trained
    trained = pipeline.train(
        texts, space=NOTEBOOK_SPACE, builder=build_in_a_cell, params={"width": 3}
    )
    assert trained.model.get_layer(index=-2).units == 3  # the cell's Dense, then the output
    assert trained.val_metric == "val_accuracy" and 0.0 <= trained.val_value <= 1.0
    logged = MlflowClient(tracking_uri=stores["tracking"]).get_run(trained.run_id)
    assert logged.data.params["width"] == "3" and logged.info.status == "FINISHED"


def raises_for_wide(params, inputs):
    if params["width"] > 4:
        raise ValueError(f"width {params['width']} is too wide")
    return build_in_a_cell(params, inputs)


@pytest.mark.slow
def test_a_builder_that_fails_for_some_values_fails_those_trials_only(texts, stores):
    space = {
        **NOTEBOOK_SPACE,
        "defaults": {**NOTEBOOK_SPACE["defaults"], "width": 2},
        "search": {"width": {"type": "categorical", "choices": [2, 8]}},
    }
    found = pipeline.search(
        texts, space=space, builder=raises_for_wide, n_trials=3, pruner="none", sampler="random"
    )
    trials = found.study.get_trials()
    failed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert failed and all("width 8 is too wide" in t.user_attrs["error"] for t in failed)
    assert len(complete) == 3 and {t.params["width"] for t in complete} == {2}
    assert found.study.study_name == f"{texts}-raises_for_wide"  # not the built-in's study
    assert found.model_uri.endswith("-reviews-raises_for_wide/1")  # its registered name


def whole_model_named_by_keras(params, inputs):
    """A whole uncompiled model, as a Keras user writes one: its layers keep Keras' names."""
    x = keras.layers.Embedding(params["max_tokens"], 8)(inputs)
    x = keras.layers.GlobalAveragePooling1D()(x)
    x = keras.layers.Dense(params["width"], activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))


def sequential_without_an_input(params, inputs):
    """`keras.Sequential([...])` with no `keras.Input`: it is called on the input given."""
    return keras.Sequential(
        [
            keras.layers.Embedding(params["max_tokens"], 8),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(params["width"], activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )


@pytest.mark.slow
@pytest.mark.parametrize("build", [whole_model_named_by_keras, sequential_without_an_input])
def test_a_whole_model_of_the_users_is_searched_and_trained(build, texts, stores):
    found = pipeline.search(
        texts, space=NOTEBOOK_SPACE, builder=build, n_trials=2, pruner="none", study="whole"
    )
    assert [t.state.name for t in found.study.trials] == ["COMPLETE", "COMPLETE"]
    assert found.model_uri == "models:/whole/1"
    assert all(0.0 <= t.value <= 1.0 for t in found.study.trials)
    trained = pipeline.train(texts, space=NOTEBOOK_SPACE, builder=build, params={"width": 3})
    assert 0.0 <= trained.val_value <= 1.0 and 0.0 <= trained.test["test_accuracy"] <= 1.0


ALWAYS_TOO_WIDE = """
import keras


def build(params, inputs):
    if params["width"] > 4:
        raise ValueError(f"width {params['width']} is too wide")
    x = keras.layers.Embedding(params["max_tokens"], 8)(inputs)
    return keras.layers.GlobalAveragePooling1D()(x)
"""


@pytest.mark.slow
def test_a_search_whose_every_trial_fails_exits_1_naming_the_first_failure(texts, stores, tmp_path):
    space = {
        **NOTEBOOK_SPACE,
        "family": "custom",
        "builder": "my_models.py:build",
        "defaults": {**NOTEBOOK_SPACE["defaults"], "width": 2},  # what the plan checks
        "search": {"width": {"type": "categorical", "choices": [8, 16]}},
    }
    path = write_space(tmp_path / "wide", space, ALWAYS_TOO_WIDE)
    args = ["search", texts, "--space", str(path), "--sampler", "grid", "--n-trials", "2"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    last = result.stderr.strip().splitlines()[-1]
    assert re.fullmatch(
        r"error: no trial finished: 2 failed; trial 0: .*width (8|16) is too wide", last
    )
    assert "(no completed trials)" in result.stdout


@pytest.mark.slow
def test_reproduce_runs_a_table_whose_rows_set_custom_keys(texts, stores, tmp_path):
    space = write_space(tmp_path / "mine")
    table = {
        "name": "conv-table",
        "dataset": texts,
        "space": space.name,
        "defaults": {"epochs": 1},
        "rows": [
            {"setting": "2 filters", "filters": 2, "seed": {"accuracy": 0.5}},
            {"setting": "6 filters", "filters": 6, "kernel_size": 2, "seed": {"accuracy": 0.6}},
        ],
    }
    path = tmp_path / "mine" / "conv-table.yaml"
    path.write_text(yaml.safe_dump(table))
    result = CliRunner().invoke(app, ["reproduce", str(path), "--seeds", "1"])
    assert result.exit_code == 0, result.output
    runs = sorted(trial_runs(stores["tracking"], texts), key=lambda r: r.data.params["filters"])
    logged = [(r.data.params["filters"], r.data.params["kernel_size"]) for r in runs]
    assert logged == [("2", "3"), ("6", "2")]
    assert "| 2 filters" in result.output and "| 6 filters" in result.output


def test_every_family_goes_through_one_builder_door(monkeypatch):
    seen = []

    def spy(params, inputs):
        seen.append((params["family"], tuple(inputs.shape)))
        return models.mlp(params, inputs)

    monkeypatch.setitem(models.BUILDERS, "mlp", spy)
    params = {"family": "mlp", "units": [4], "loss": "binary_crossentropy", "batch_size": 8}
    model = models.build_model(params, "binary", 10)
    assert seen == [("mlp", (None, 10))] and model.output_shape == (None, 1)
    with pytest.raises(ValueError, match="the custom family needs its builder function"):
        models.build_model({**params, "family": "custom"}, "binary", 10)


def bad_space(tmp_path: Path, models_text: str = MODELS, **changes) -> Path:
    return write_space(tmp_path / "bad", {**SPACE, **changes}, models_text)


def named_like_copy(tmp_path: Path) -> Path:
    path = bad_space(tmp_path, code=["copy.py"])
    (path.parent / "copy.py").write_text("x = 1\n")
    return path


ERRORS = {
    "a file named like a module of Python": (
        named_like_copy,
        "code[1]: copy.py has the name of a module of Python or of an installed package",
    ),
    "a whole model on inputs of its own": (
        lambda p: bad_space(
            p,
            MODELS.replace(
                'return Scale(params["scale"])(x)',
                "own = keras.Input((5,))\n    return keras.Model(own, keras.layers.Dense(1)(own))",
            ),
        ),
        "the model must take the input it was given, (None, 12) int32",
    ),
    "a missing file": (
        lambda p: bad_space(p, builder="nope.py:build"),
        "builder: cannot read",
    ),
    "a missing function": (
        lambda p: bad_space(p, builder="my_models.py:bulid"),
        "my_models.py has no function 'bulid'",
    ),
    "raises on import": (
        lambda p: bad_space(p, MODELS + "\n1 / 0\n"),
        "my_models.py:build: failed on import: ZeroDivisionError: division by zero",
    ),
    "raises on build": (
        lambda p: bad_space(
            p, MODELS.replace("x = keras", "raise KeyError('nope')\n    x = keras", 1)
        ),
        "builder my_models.py:build cannot build the defaults: KeyError: 'nope'",
    ),
    "an unknown representation": (
        lambda p: bad_space(p, representation="bag"),
        "representation: unknown 'bag'; expected one of token_ids, multi_hot",
    ),
    "returns something else": (
        lambda p: bad_space(p, MODELS.replace('return Scale(params["scale"])(x)', "return 42")),
        "cannot build the defaults: BuildError: returned int; expected a Keras tensor",
    ),
    "a whole model that does not fit the task": (
        lambda p: bad_space(
            p,
            MODELS.replace(
                'return Scale(params["scale"])(x)',
                "return keras.Model(inputs, keras.layers.Dense(3)(x))",
            ),
        ),
        "output has shape (None, 3); a binary task needs (None, 1)",
    ),
    "custom mixed with mlp": (
        lambda p: bad_space(p, search={"family": {"type": "categorical", "choices": ["mlp"]}}),
        "search.family: fixed at the top level of a custom space",
    ),
    "a builder in a built-in space": (
        lambda p: write_space(p / "bad", {k: v for k, v in SPACE.items() if k != "family"}),
        "builder: for your own model only: add `family: custom`",
    ),
    "a table representation for texts": (
        lambda p: bad_space(p, representation="table"),
        "representation: table does not fit folder:",
    ),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_custom_space_errors_are_one_line_and_create_nothing(case, texts, stores, tmp_path):
    make, message = ERRORS[case]
    space = make(tmp_path)
    result = CliRunner().invoke(app, ["search", texts, "--space", str(space), "--n-trials", "1"])
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert optuna.study.get_all_study_summaries(stores["storage"]) == []
    assert not MlflowClient(tracking_uri=stores["tracking"]).search_experiments(
        filter_string=f"name = '{texts}'"
    )


def test_a_custom_key_with_no_declaration_is_refused_by_train(texts, stores, tmp_path):
    space = write_space(tmp_path / "mine")
    result = CliRunner().invoke(app, ["train", texts, "--space", str(space), "filterz=3"])
    assert result.exit_code == 2, result.output
    assert "arguments: filterz: unknown key" in result.output
    assert not MlflowClient(tracking_uri=stores["tracking"]).search_experiments(
        filter_string=f"name = '{texts}'"
    )


def test_a_custom_key_is_refused_in_a_built_in_space(tmp_path):
    raw = {"defaults": {"units": 4, "loss": "mse", "epochs": 1, "batch_size": 4, "filters": 3}}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(raw))
    result = CliRunner().invoke(app, ["search", "imdb", "--space", str(path)])
    assert result.exit_code == 2 and "defaults.filters: unknown key" in result.output


@pytest.mark.slow
def test_train_with_key_values_runs_the_custom_builder_from_the_command_line(
    texts, stores, tmp_path
):
    space = write_space(tmp_path / "mine")
    args = ["train", texts, "--space", str(space), "filters=5", "kernel_size=2", "epochs=1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    (run,) = MlflowClient(tracking_uri=stores["tracking"]).search_runs(
        [MlflowClient(tracking_uri=stores["tracking"]).get_experiment_by_name(texts).experiment_id]
    )
    assert (run.data.params["filters"], run.data.params["kernel_size"]) == ("5", "2")


def test_the_plan_carries_the_source_not_a_path(tmp_path, texts):
    from pipeline import engine
    from pipeline.engine import planner

    space = write_space(tmp_path / "mine")
    plan = planner.search_plan(engine.SearchJob(dataset=texts, space=space, n_trials=1))
    assert plan.builder.modules == ("my_models", "my_layers")
    assert dict(plan.builder.sources)["my_models.py"] == MODELS
    assert plan.parent_params["builder"].startswith("my_models.py:build (sha256 ")
    (tmp_path / "plan.pickle").write_bytes(pickle.dumps(plan))
    shutil.rmtree(tmp_path / "mine")  # a worker, or a node, never reads the file
    code = """
        import pickle, sys
        plan = pickle.load(open(sys.argv[1], "rb"))
        build = plan.builder.load()
        print(build.__module__, build.__name__, build.__code__.co_filename.count("mine"))
    """
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), str(tmp_path / "plan.pickle")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["my_models", "build", "0"]


SCRIPT = """
import keras
import pipeline


def build(params, inputs):  # defined in __main__, as in a notebook's cell
    x = keras.layers.Embedding(params["max_tokens"], 8)(inputs)
    return keras.layers.GlobalAveragePooling1D()(x)


if __name__ == "__main__":
    import sys
    space = {"representation": "token_ids", "defaults": {"max_tokens": 100,
             "sequence_length": 8, "loss": "binary_crossentropy", "epochs": 1,
             "batch_size": 16, "learning_rate": 0.01, "optimizer": "adam"},
             "search": {"learning_rate": {"type": "float", "low": 0.001, "high": 0.1}}}
    found = pipeline.search(sys.argv[1], space=space, builder=build, n_trials=2,
                            workers=2, study="script", pruner="none")
    print("complete", len([t for t in found.study.trials if t.state.name == "COMPLETE"]))
"""


@pytest.mark.slow
def test_a_builder_of_the_main_module_reaches_worker_processes(texts, stores, tmp_path):
    """`python -c`, as a notebook's kernel: a __main__ with no file that workers could
    import again, so the function must travel by value."""
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, texts],
        cwd=tmp_path,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-2:] == ["complete", "2"]
    pids = {r.data.tags["worker_pid"] for r in trial_runs(stores["tracking"], texts)}
    assert len(pids) == 2


def test_warm_start_entries_of_a_custom_space_set_its_own_keys(tmp_path):
    from pipeline import spaces

    path = write_space(tmp_path / "mine", {**SPACE, "warm_start": [{"filters": 6}]})
    (first,) = spaces.load(path, "binary").warm_start
    assert (first["filters"], first["kernel_size"], first["family"]) == (6, 3, "custom")
    path = write_space(tmp_path / "other", {**SPACE, "warm_start": [{"filterz": 6}]})
    with pytest.raises(UserError, match=r"warm_start\[1\]\.filterz: unknown key"):
        spaces.load(path, "binary")


OTHER_BACKENDS = [
    pytest.param(name, marks=pytest.mark.skipif(not importlib.util.find_spec(name), reason=name))
    for name in ("jax", "torch")
]


@pytest.mark.slow
@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_a_custom_builder_trains_on_another_backend(backend, texts, stores, tmp_path):
    space = write_space(tmp_path / "mine")
    command = [sys.executable, "-m", "pipeline", "train", texts, "--space", str(space)]
    done = subprocess.run(
        [*command, "--backend", backend, "filters=3", "epochs=1"],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "val_accuracy=" in done.stdout
    client = MlflowClient(tracking_uri=stores["tracking"])
    (run,) = client.search_runs([client.get_experiment_by_name(texts).experiment_id])
    assert run.data.tags["backend"] == backend and run.data.params["filters"] == "3"


def test_train_asks_for_a_key_declared_only_under_search(texts, stores, tmp_path):
    defaults = {k: v for k, v in SPACE["defaults"].items() if k != "filters"}
    space = write_space(tmp_path / "mine", {**SPACE, "defaults": defaults})
    result = CliRunner().invoke(app, ["train", texts, "--space", str(space)])
    assert result.exit_code == 2, result.output
    assert "filters has no default; set filters=VALUE or give it one under defaults" in (
        result.output
    )


def test_the_notebook_function_refuses_a_builder_without_a_space_of_its_own(texts):
    with pytest.raises(UserError, match="builder= needs a space of your own"):
        pipeline.search(texts, builder=build_in_a_cell, n_trials=1)
    with pytest.raises(UserError, match="code: ships files with a builder file"):
        pipeline.search(texts, space={**NOTEBOOK_SPACE, "code": ["x.py"]}, builder=build_in_a_cell)


def reads_width_only(params, inputs):
    x = keras.layers.Embedding(params["max_tokens"], 8)(inputs)
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.layers.Dense(params.get("width", 4))(x)


def test_a_key_the_builder_never_reads_is_one_warning_at_plan_time(texts, caplog):
    from pipeline import engine
    from pipeline.engine import planner

    space = {
        **NOTEBOOK_SPACE,
        "defaults": {**NOTEBOOK_SPACE["defaults"], "rnn_unit": 32, "rnn_dropout": 0.1},
        "search": {
            **NOTEBOOK_SPACE["search"],
            "rnn_dropout": {"type": "float", "low": 0, "high": 0.5},
        },
    }
    job = engine.SearchJob(dataset=texts, space=space, builder=reads_width_only, n_trials=1)
    with caplog.at_level("WARNING", logger="pipeline"):
        plan = planner.search_plan(job)
    unread = [r.getMessage() for r in caplog.records if "never reads" in r.getMessage()]
    assert [m.split(":")[1].split()[0] for m in unread] == ["rnn_unit", "rnn_dropout"]
    assert plan.study == f"{texts}-reads_width_only"  # a study of its own, not the built-in's
    caplog.clear()
    with caplog.at_level("WARNING", logger="pipeline"):
        planner.search_plan(
            engine.SearchJob(
                dataset=texts, space=NOTEBOOK_SPACE, builder=reads_width_only, n_trials=1
            )
        )
    assert not [r for r in caplog.records if "never reads" in r.getMessage()]
