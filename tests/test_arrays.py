"""Arrays from a notebook: `pipeline.search(x=..., y=...)` writes them once, splits them as
Keras does, searches with worker processes, and registers a model that takes arrays."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mlflow.tracking import MlflowClient

import pipeline
from pipeline import trial_record
from pipeline.datasets import arrays
from pipeline.errors import UserError


def digits(n: int = 240, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three classes of 4x4 'images': the class is the brightest quarter."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.normal(0, 0.3, (n, 4, 4)).astype("float32")
    for i, label in enumerate(y):
        x[i, label, :] += 2.0
    return x, y


def test_arrays_are_split_as_keras_splits_them_and_written_once(tmp_path):
    x, y = digits(100)
    saved = arrays.save(tmp_path, x=x, y=y, validation_split=0.25)
    data = arrays.load(saved.source, "digits", saved.task, saved.class_names)
    assert saved.task == "multiclass" and saved.class_names == ("0", "1", "2")
    assert (len(data.train), len(data.val), len(data.test)) == (60, 20, 20)  # test: a fifth
    assert data.input_shape == (4, 4) and saved.source.row_shape == (4, 4)
    rest = np.sort(np.setdiff1d(np.arange(100), _rows_of(x, data.test.x)))
    assert np.array_equal(data.val.x, x[rest][-20:])  # validation: the last rows, as Keras
    again = arrays.save(tmp_path, x=x, y=y, validation_split=0.25)
    assert again.source == saved.source and len(list(tmp_path.iterdir())) == 1
    given_splits = arrays.save(
        tmp_path,
        x=x[:50],
        y=y[:50],
        validation_data=(x[50:70], y[50:70]),
        test_data=(x[70:], y[70:]),
    )
    data = arrays.load(given_splits.source, "d", given_splits.task, given_splits.class_names)
    assert (len(data.train), len(data.val), len(data.test)) == (50, 20, 30)


def _rows_of(x: np.ndarray, rows: np.ndarray) -> np.ndarray:
    flat = x.reshape(len(x), -1)
    return np.array([int(np.flatnonzero((flat == r.ravel()).all(axis=1))[0]) for r in rows])


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"x": np.zeros((5, 2)), "y": np.zeros(4)}, "x has 5 rows, y has 4"),
        ({"x": np.zeros(5), "y": np.zeros(5)}, "expected x with one row per example"),
        ({"x": np.array([["a"]] * 5), "y": np.zeros(5)}, "x must hold numbers"),
        ({"x": np.zeros((5, 2))}, "needs its labels"),
        ({"x": np.zeros((10, 2)), "y": np.zeros(10), "validation_split": 1.5}, "between 0 and 1"),
        (
            {
                "x": np.zeros((10, 2)),
                "y": np.zeros(10),
                "test_data": (np.zeros((3, 4)), np.zeros(3)),
            },
            "test rows have shape (4,), the training rows (2,)",
        ),
    ],
)
def test_arrays_that_cannot_be_a_dataset_are_one_line(tmp_path, given, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        arrays.save(tmp_path, **given)
    assert list(tmp_path.iterdir()) == []  # nothing half-written


@settings(max_examples=60, deadline=None)
@given(
    labels=st.lists(st.integers(0, 5), min_size=4, max_size=40),
    shift=st.sampled_from([0.0, 0.5]),
)
def test_the_task_is_told_from_the_labels(labels, shift):
    y = np.array(labels, dtype=float) + shift
    task = arrays.infer_task(y)
    if shift:
        assert task == "regression"
    elif set(labels) <= {0, 1}:
        assert task == "binary"
    else:
        assert task == "multiclass"


KERAS_TUNER_DIGITS = """
import keras
from keras import layers


def build_model(hp):
    model = keras.Sequential()
    model.add(layers.Flatten())
    for i in range(hp.Int("num_layers", 1, 2)):
        model.add(layers.Dense(hp.Int(f"units_{i}", min_value=8, max_value=32, step=8),
                               activation="relu"))
    model.add(layers.Dense(3, activation="softmax"))
    model.compile(optimizer=keras.optimizers.Adam(hp.Float("lr", 1e-3, 3e-2, sampling="log")),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
"""


@pytest.mark.slow
def test_a_search_on_arrays_with_two_workers_returns_a_model_that_predicts_arrays(
    stores, tmp_path, monkeypatch
):
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(tmp_path / "data"))
    namespace: dict = {}
    exec(KERAS_TUNER_DIGITS, namespace)
    x, y = digits(240)
    x_test, y_test = digits(60, seed=1)
    found = pipeline.search(
        "digits",
        x=x,
        y=y,
        validation_split=0.25,
        test_data=(x_test, y_test),
        builder=namespace["build_model"],
        space={"defaults": {"epochs": 6, "batch_size": 16}},
        n_trials=3,
        workers=2,
        pruner="none",
        show=False,
    )
    states = [t.state.name for t in found.study.trials]
    assert states == ["COMPLETE"] * 3 and found.study.study_name == "digits-build_model"
    model = found.best_model()
    predicted = model.predict(x_test, verbose=0)
    assert predicted.shape == (60, 3)
    assert (predicted.argmax(axis=1) == y_test).mean() >= 0.8  # it learned the digits
    assert {"num_layers", "units_0", "lr"} <= set(found.best_params)
    client = MlflowClient(tracking_uri=stores["tracking"])
    run_id = trial_record.read(found.study.best_trial).run_id
    inputs = client.get_run(run_id).inputs.dataset_inputs
    profiles = {i.tags[0].value: json.loads(i.dataset.profile) for i in inputs}
    assert profiles["train"]["shape"] == [180, 4, 4] and profiles["test"]["shape"] == [60, 4, 4]
    assert {i.dataset.name for i in inputs} == {"digits"}
    import mlflow

    served = mlflow.pyfunc.load_model(found.model_uri)
    schema = served.metadata.get_input_schema()
    assert schema.is_tensor_spec() and tuple(schema.inputs[0].shape) == (-1, 4, 4)
    labels = served.predict(x_test[:5])
    assert list(labels["label"]) == [str(v) for v in predicted[:5].argmax(axis=1)]
