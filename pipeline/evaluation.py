"""Scoring a Keras model: loss and metric as Keras computes them, and its latency."""

from __future__ import annotations

import time

import keras
import numpy as np

from pipeline import backends
from pipeline.metrics import task_metric
from pipeline.models import keras_metric

# Rows per forward pass of dense rows (tables, token ids: embedded, they grow by the
# embedding's width). Sparse rows go in larger passes: their first layer multiplies them
# sparse (models.SparseDense), so a pass holds rows x units, and one pass over IMDB's 10,000
# validation rows (kept as one SparseTensor) takes 15 ms against 60 ms in chunks of 2,048.
EVAL_BATCH = 2048
# Sparse rows scored once (a test split, new texts) are converted and scored this many rows
# at a time: IMDB's 25,000 test rows in one pass raised a trial's peak resident memory by
# about 160 MB (int64 indices built, then copied into TensorFlow), for 8 ms less a trial
# (61 against 69 ms, 2-core CPU).
SPARSE_CHUNK = 8192


def evaluate(
    model: keras.Model, x, y_true: np.ndarray, task: str, keep: bool = False
) -> tuple[dict, np.ndarray]:
    """The compiled loss and metric, as Keras' evaluate reports them, and the predictions.
    `keep`: sparse rows scored again later (a validation split): see `sparse_tensor`."""
    z = logits(model, x, keep)
    pred = keras.ops.convert_to_numpy(_activation(model)(z))
    if y_true.ndim < pred.ndim and pred.shape[-1] == 1:
        y_true = y_true.reshape(-1, 1)
    if model.loss in FROM_LOGITS and _has_activation(model):
        loss = FROM_LOGITS[model.loss](y_true, z, from_logits=True)
    else:
        loss = keras.losses.get(model.loss)(y_true, pred)
    metric = keras_metric(task, model.loss)
    metric.update_state(y_true, pred)
    loss = float(np.mean(keras.ops.convert_to_numpy(loss)))
    return {"loss": loss, task_metric(task): float(metric.result())}, pred


FROM_LOGITS = {
    "binary_crossentropy": keras.losses.binary_crossentropy,
    "categorical_crossentropy": keras.losses.categorical_crossentropy,
    "sparse_categorical_crossentropy": keras.losses.sparse_categorical_crossentropy,
}


def logits(model: keras.Model, x, keep: bool = False) -> np.ndarray:
    """Eager forward passes, up to the output layer's activation: no predict function to
    trace for a one-off model, and cross-entropy from logits, as Keras' compiled loss
    computes it (from clipped probabilities it differs for confident errors)."""
    output = output_layer(model)
    activation = _activation(model)
    if _has_activation(model):
        output.activation = keras.activations.linear
    try:
        sparse = not isinstance(x, np.ndarray)
        if sparse and keep and backends.takes_sparse_input():
            return _numpy(model(sparse_tensor(x, keep), training=False))
        size = SPARSE_CHUNK if sparse and backends.takes_sparse_input() else EVAL_BATCH
        scores = []
        for i in range(0, x.shape[0], size):  # one chunk converted at a time
            chunk = sparse_tensor(x[i : i + size]) if sparse else x[i : i + size]
            scores.append(_numpy(model(chunk, training=False)))
        return np.concatenate(scores)
    finally:
        if _has_activation(model):
            output.activation = activation


def sparse_tensor(x, keep: bool = False):
    """A scipy CSR matrix as the backend's input (`backends.sparse_input`); `keep`: kept
    while the matrix lives (a validation split), else converted each time."""
    return backends.sparse_input(x, keep)


def _numpy(tensor) -> np.ndarray:
    """A backend's tensor as a NumPy array (PyTorch's: detached, on the CPU)."""
    return keras.ops.convert_to_numpy(tensor)


def latency_ms(model: keras.Model, x, n: int = 1000, repeats: int = 3) -> float:
    """Milliseconds to score `n` examples in one eager forward pass, best of `repeats`."""
    part = x[:n]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        logits(model, part)
        times.append(time.perf_counter() - start)
    return min(times) * 1000 * n / part.shape[0]


def probabilities(model: keras.Model, x) -> np.ndarray:
    """The output layer's values (class probabilities, or regression values)."""
    return _numpy(_activation(model)(logits(model, x)))


def output_layer(model: keras.Model) -> keras.layers.Layer:
    """The layer that makes the model's output: the one named `output` (the task's, added
    to a builder's last hidden tensor), else the model's last (a whole model of the user's,
    whose last layer may have any name)."""
    names = {layer.name for layer in model.layers}
    return model.get_layer("output") if "output" in names else model.layers[-1]


def _has_activation(model: keras.Model) -> bool:
    """Whether the output layer applies an activation that logits leave out (an averaging
    layer of fold models, or a whole model nested as the last layer, has none)."""
    return hasattr(output_layer(model), "activation")


def _activation(model: keras.Model):
    """The output layer's activation; linear where it has none (its values are final)."""
    return getattr(output_layer(model), "activation", keras.activations.linear)
