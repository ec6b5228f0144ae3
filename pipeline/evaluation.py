"""Scoring a Keras model: loss and metric as Keras computes them, and its latency."""

from __future__ import annotations

import time
import weakref
from typing import Any

import keras
import numpy as np

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
    pred = np.asarray(_activation(model)(z))
    if y_true.ndim < pred.ndim and pred.shape[-1] == 1:
        y_true = y_true.reshape(-1, 1)
    if model.loss in FROM_LOGITS:
        loss = FROM_LOGITS[model.loss](y_true, z, from_logits=True)
    else:
        loss = keras.losses.get(model.loss)(y_true, pred)
    metric = keras_metric(task, model.loss)
    metric.update_state(y_true, pred)
    return {"loss": float(np.mean(loss)), task_metric(task): float(metric.result())}, pred


FROM_LOGITS = {
    "binary_crossentropy": keras.losses.binary_crossentropy,
    "categorical_crossentropy": keras.losses.categorical_crossentropy,
    "sparse_categorical_crossentropy": keras.losses.sparse_categorical_crossentropy,
}


def logits(model: keras.Model, x, keep: bool = False) -> np.ndarray:
    """Eager forward passes, up to the output layer's activation: no predict function to
    trace for a one-off model, and cross-entropy from logits, as Keras' compiled loss
    computes it (from clipped probabilities it differs for confident errors)."""
    output = model.get_layer("output")
    activation = _activation(model)
    output.activation = keras.activations.linear
    try:
        sparse = not isinstance(x, np.ndarray)
        if sparse and keep:
            return np.asarray(model(sparse_tensor(x, keep), training=False))
        size = SPARSE_CHUNK if sparse else EVAL_BATCH
        scores = []
        for i in range(0, x.shape[0], size):  # one chunk converted at a time
            chunk = sparse_tensor(x[i : i + size]) if sparse else x[i : i + size]
            scores.append(np.asarray(model(chunk, training=False)))
        return np.concatenate(scores)
    finally:
        output.activation = activation


_TENSORS: dict[int, Any] = {}  # id of a CSR matrix -> its SparseTensor, while it lives


def sparse_tensor(x, keep: bool = False):
    """A scipy CSR matrix as a tf.SparseTensor, its indices in row-major order. `keep`: keep
    it while the matrix lives, for the splits every trial or epoch reads (IMDB: 0.14 s to
    convert the training split, 18 ms the validation split; they hold 38 and 25 MB). The
    test split, read once a trial, is converted each time, `SPARSE_CHUNK` rows at a time."""
    if not keep:
        return _to_sparse_tensor(x)
    key = id(x)
    if key not in _TENSORS:
        _TENSORS[key] = _to_sparse_tensor(x)
        weakref.finalize(x, _TENSORS.pop, key, None)
    return _TENSORS[key]


def _to_sparse_tensor(x):
    import tensorflow as tf

    if not x.has_sorted_indices:
        x = x.sorted_indices()
    rows = np.repeat(np.arange(x.shape[0], dtype="int64"), np.diff(x.indptr))
    indices = np.stack([rows, x.indices.astype("int64")], axis=1)
    return tf.SparseTensor(indices, x.data.astype("float32"), x.shape)


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
    return np.asarray(_activation(model)(logits(model, x)))


def _activation(model: keras.Model):
    """The output layer's activation (an averaging layer of fold models has none)."""
    return getattr(model.get_layer("output"), "activation", keras.activations.linear)
