"""The model builder: plain dict in, compiled keras.Model out."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import scipy.sparse as sp

from pipeline.models import build_model
from pipeline.params import layer_units


def dense_layers(model: keras.Model) -> list[keras.layers.Dense]:
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]


def test_hidden_layers_and_units_follow_params():
    params = {"units": [16, 32, 64, 64], "activation": "tanh", "loss": "binary_crossentropy"}
    model = build_model(params, "binary", n_features=100)
    layers = dense_layers(model)
    assert [layer.units for layer in layers] == [16, 32, 64, 64, 1]
    assert [layer.activation.__name__ for layer in layers] == ["tanh"] * 4 + ["sigmoid"]
    assert model.count_params() == 101 * 16 + 17 * 32 + 33 * 64 + 65 * 64 + 65


@pytest.mark.parametrize(
    ("task", "loss", "units", "activation", "metric"),
    [
        ("binary", "mse", 1, "sigmoid", "BinaryAccuracy"),
        ("multiclass", "categorical_crossentropy", 46, "softmax", "CategoricalAccuracy"),
        (
            "multiclass",
            "sparse_categorical_crossentropy",
            46,
            "softmax",
            "SparseCategoricalAccuracy",
        ),
        ("regression", "mse", 1, "linear", "MeanAbsoluteError"),
    ],
)
def test_output_layer_and_metric_per_task(task, loss, units, activation, metric):
    model = build_model({"units": 8, "loss": loss}, task, n_features=13, n_classes=46)
    output = dense_layers(model)[-1]
    assert (output.units, output.activation.__name__) == (units, activation)
    assert [m["class_name"] for m in model.get_compile_config()["metrics"]] == [metric]
    assert model.loss == loss


def test_dropout_optimizer_and_learning_rate():
    params = {
        "units": 8,
        "n_layers": 3,
        "dropout": 0.25,
        "loss": "mse",
        "optimizer": "adam",
        "learning_rate": 0.005,
    }
    model = build_model(params, "regression", n_features=4)
    drops = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert [d.rate for d in drops] == [0.25] * 3
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.005)


def test_loss_must_fit_the_task():
    with pytest.raises(ValueError, match="does not fit a multiclass task"):
        build_model({"units": 8, "loss": "mse"}, "multiclass", 10, 46)


def test_layer_units_forms():
    assert layer_units({"units": "16,32"}) == [16, 32]
    assert layer_units({"units": 8, "n_layers": 3}) == [8, 8, 8]
    with pytest.raises(ValueError, match="n_layers=3 but 2 units"):
        layer_units({"units": [8, 8], "n_layers": 3})


def test_sparse_input_trains_on_a_csr_matrix():
    keras.utils.set_random_seed(0)
    x = sp.random(400, 50, density=0.3, format="csr", dtype="float32", random_state=0)
    signal = np.asarray(x[:, :5].sum(axis=1)).ravel()
    y = (signal > np.median(signal)).astype("float32")
    params = {"units": 8, "loss": "binary_crossentropy", "learning_rate": 0.01}
    model = build_model(params, "binary", 50, sparse=True)
    history = model.fit(x, y, epochs=30, batch_size=32, verbose=0)
    assert history.history["accuracy"][-1] > 0.9


@pytest.mark.parametrize("loss", ["binary_crossentropy", "mse"])
def test_eager_evaluation_matches_keras_evaluate_even_when_overconfident(loss):
    from pipeline.evaluation import evaluate

    keras.utils.set_random_seed(0)
    x = sp.random(300, 40, density=0.3, format="csr", dtype="float32", random_state=1)
    y = np.random.RandomState(2).randint(0, 2, 300).astype("float32")  # noise: overfits
    params = {"units": [64, 64], "loss": loss, "learning_rate": 0.05, "batch_size": 32}
    model = build_model(params, "binary", 40, sparse=True)
    model.fit(x, y, epochs=60, batch_size=32, verbose=0)
    ours, pred = evaluate(model, x[:150], y[:150], "binary")
    theirs = model.evaluate(x[:150], y[:150], verbose=0, return_dict=True)
    assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-4)
    assert ours["accuracy"] == pytest.approx(theirs["accuracy"])
    assert pred.shape == (150, 1) and pred.min() >= 0 and pred.max() <= 1


def test_sparse_rows_are_shuffled_each_epoch_and_repeat_with_the_seed():
    from pipeline.backends import batches

    x = sp.random(10, 6, density=0.5, format="csr", random_state=0, dtype="float32")
    x.data[:] = np.arange(1, x.nnz + 1)
    y = np.arange(10, dtype="float32")  # labels name their row

    def epochs(seed: int) -> list[list[float]]:
        keras.utils.set_random_seed(seed)
        dataset = batches(x, y, 4)["x"]
        out = []
        for _ in range(2):
            parts = [(f, labels.numpy()) for f, labels in dataset]
            assert [len(labels) for _, labels in parts] == [4, 4, 2]
            for features, labels in parts:  # each row keeps its own features
                dense = keras.ops.convert_to_numpy(keras.ops.convert_to_tensor(features))
                assert np.array_equal(dense, x[labels.astype(int)].toarray())
            out.append([float(v) for _, labels in parts for v in labels])
        return out

    first, second = epochs(0)
    assert sorted(first) == sorted(second) == list(range(10))  # every row once an epoch
    assert first != second  # reshuffled between epochs
    assert epochs(0) == [first, second]  # and the same again with the same seed


def test_sparse_first_layer_matches_keras_dense_and_loads_back(tmp_path):
    import tensorflow as tf

    from pipeline.evaluation import sparse_tensor
    from pipeline.models import CUSTOM_OBJECTS, SparseDense

    x = sp.random(64, 30, density=0.2, format="csr", dtype="float32", random_state=3)
    params = {"units": [40, 4], "loss": "binary_crossentropy"}  # 40: blocks of 16, 16, 8
    model = build_model(params, "binary", 30, sparse=True)
    first = model.get_layer("dense_1")
    assert type(first) is SparseDense and type(model.get_layer("dense_2")) is keras.layers.Dense
    kernel, bias = first.get_weights()
    first.set_weights([kernel, np.linspace(-0.2, 0.2, 40, dtype="float32")])
    reference = keras.layers.Dense(40, activation="relu")
    reference.build((None, 30))
    reference.set_weights(first.get_weights())
    with tf.GradientTape(persistent=True) as tape:
        ours = first(sparse_tensor(x))
        theirs = reference(tf.constant(x.toarray()))
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-6)
    grads = tape.gradient(ours, first.kernel), tape.gradient(theirs, reference.kernel)
    np.testing.assert_allclose(np.asarray(grads[0]), grads[1].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(first(x.toarray()).numpy(), theirs.numpy(), rtol=1e-5, atol=1e-6)
    model.save(tmp_path / "m.keras")
    path = tmp_path / "m.keras"
    loaded = keras.models.load_model(path, custom_objects=CUSTOM_OBJECTS, compile=False)
    assert type(loaded.get_layer("dense_1")) is SparseDense
    dense_x = x.toarray()
    np.testing.assert_allclose(loaded(dense_x).numpy(), model(dense_x).numpy(), rtol=1e-6)


def test_a_csr_matrix_becomes_a_sparse_tensor_once_while_it_lives():
    import gc

    from pipeline import backends, evaluation

    x = sp.random(20, 7, density=0.3, format="csr", dtype="float32", random_state=4)
    key = (id(x), "tensorflow")
    assert evaluation.sparse_tensor(x) is not evaluation.sparse_tensor(x)  # not kept
    assert key not in backends._KEPT
    first = evaluation.sparse_tensor(x, keep=True)
    assert evaluation.sparse_tensor(x, keep=True) is first  # kept: not converted again
    dense = keras.ops.convert_to_numpy(keras.ops.convert_to_tensor(first))
    np.testing.assert_array_equal(dense, x.toarray())
    assert key in backends._KEPT
    del x
    gc.collect()
    assert key not in backends._KEPT  # dropped with its matrix


def test_sparse_rows_scored_once_go_through_the_model_a_chunk_at_a_time(monkeypatch):
    from pipeline import evaluation

    x = sp.random(10, 30, density=0.3, format="csr", dtype="float32", random_state=6)
    model = build_model({"units": [8], "loss": "binary_crossentropy"}, "binary", 30, sparse=True)
    expected = evaluation.logits(model, x.toarray())
    monkeypatch.setattr(evaluation, "SPARSE_CHUNK", 4)
    seen = []
    original = evaluation.sparse_tensor
    monkeypatch.setattr(
        evaluation, "sparse_tensor", lambda m, keep=False: seen.append(m.shape[0]) or original(m)
    )
    np.testing.assert_allclose(evaluation.logits(model, x), expected, rtol=1e-5, atol=1e-6)
    assert seen == [4, 4, 2]  # converted a chunk at a time, every row once, in order
    np.testing.assert_allclose(evaluation.logits(model, x, keep=True), expected, rtol=1e-5)
    assert seen == [4, 4, 2, 10]  # a kept split (validation) stays one SparseTensor


def test_the_compiled_state_is_built_before_fit_and_left_at_zero():
    from pipeline.training import _build_compiled

    x = sp.random(30, 12, density=0.3, format="csr", dtype="float32", random_state=5)
    y = (np.arange(30) % 2).astype("float32")
    model = build_model({"units": 4, "loss": "binary_crossentropy"}, "binary", 12, sparse=True)
    assert model.optimizer.built  # build_model creates the optimizer's slots
    _build_compiled(model, x[:2], y[:2])
    assert model._compile_metrics.built and model._compile_loss.built
    assert all(float(v.numpy()) == 0 for m in model.metrics for v in m.variables)


def test_a_sparse_model_is_never_jit_compiled_a_dense_one_may_be():
    """With a GPU visible, Keras' jit_compile="auto" resolves to XLA for models whose layers
    all support it, through the same check as setting it to True here."""
    import warnings

    from pipeline.backends import batches
    from pipeline.training import _build_compiled

    x = sp.random(64, 30, density=0.2, format="csr", dtype="float32", random_state=0)
    y = (np.arange(64) % 2).astype("float32")
    params = {"units": [8], "loss": "binary_crossentropy", "batch_size": 16}
    sparse = build_model(params, "binary", 30, sparse=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras: "Model doesn't support jit_compile=True"
        sparse.jit_compile = True
    assert sparse.jit_compile is False
    _build_compiled(sparse, x[:2], y[:2])
    history = sparse.fit(**batches(x, y, 16), epochs=2, verbose=0).history
    assert len(history["loss"]) == 2 and all(np.isfinite(history["loss"]))
    dense = build_model(params, "binary", 30)
    dense.jit_compile = True
    assert dense.jit_compile is True
