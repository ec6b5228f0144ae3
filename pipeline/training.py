"""Train one configuration on a dataset and evaluate it with Keras: the body of every trial."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
from sklearn.model_selection import KFold

from pipeline import stopping
from pipeline.datasets import Dataset, Split
from pipeline.metrics import task_metric, val_metric
from pipeline.models import build_model, keras_metric

EVAL_BATCH = 8192
EpochHook = Callable[[int, dict[str, float]], bool]  # (epoch, logs) -> stop now?


class TrainingDiverged(ValueError):
    """The loss became NaN or infinite."""


@dataclass
class TrainResult:
    history: dict[str, list[float]]  # per epoch; mean over folds with k-fold validation
    val_metric: str
    val_value: float
    test: dict[str, float] = field(default_factory=dict)  # test_loss, test_accuracy|test_mae
    fold_values: list[float] = field(default_factory=list)
    stopped_by: str = ""  # "", "pruned" or "early_stopping"
    n_params: int = 0
    latency_ms: float = 0.0  # to score 1,000 examples (test set, one eager forward pass)
    seconds: float = 0.0
    model: keras.Model | None = None
    test_true: np.ndarray | None = None
    test_pred: np.ndarray | None = None

    @property
    def epochs_run(self) -> int:
        return len(self.history.get("loss", []))


def configure_devices() -> str:
    """Use a GPU when TensorFlow sees one (memory growth on), else the CPU; returns which."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        # RuntimeError: already initialised, so growth was set earlier in this process
        with contextlib.suppress(RuntimeError):
            tf.config.experimental.set_memory_growth(gpu, True)
    return f"GPU x{len(gpus)}" if gpus else "CPU"


def labels_for(y: np.ndarray, params: dict[str, Any], data: Dataset) -> np.ndarray:
    if params["loss"] == "categorical_crossentropy":
        return keras.utils.to_categorical(y, data.n_classes)
    return y


def folds(data: Dataset) -> list[tuple[Split, Split]]:
    """(train, validation) pairs: the fixed split, or k contiguous folds as seed 004 does."""
    if data.val is not None:
        return [(data.train, data.val)]
    splitter = KFold(n_splits=data.k_folds, shuffle=False)
    return [(data.train.take(a), data.train.take(b)) for a, b in splitter.split(data.train.y)]


def _model(params: dict[str, Any], data: Dataset) -> keras.Model:
    sparse = not isinstance(data.train.x, np.ndarray)
    return build_model(params, data.task, data.n_features, data.n_classes, sparse=sparse)


class _Validation(keras.callbacks.Callback):
    """val_loss and val_<metric> after each epoch from one eager forward pass: the same
    values as Keras' validation_data, without tracing and running a test function per
    model (about 0.5 s of a 4 s IMDB trial)."""

    def __init__(self, x, y: np.ndarray, task: str) -> None:
        super().__init__()
        self.x, self.y, self.task = x, y, task

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        values, _ = evaluate(self.model, self.x, self.y, self.task)
        logs.update({f"val_{k}": v for k, v in values.items()})


class _EpochReporter(keras.callbacks.Callback):
    """Hands each epoch's logs to the hook (the pruner); stops training when it says so."""

    def __init__(self, hook: EpochHook | None) -> None:
        super().__init__()
        self.hook, self.stopped = hook, False

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        stopping.check()

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        stopping.check()
        if self.hook is not None and self.hook(epoch, dict(logs or {})):
            self.stopped = True
            self.model.stop_training = True


def _fit(
    model,
    params,
    data,
    train: Split,
    val: Split | None,
    epochs: int,
    hook: EpochHook | None = None,
    verbose: int = 0,
) -> tuple[dict, bool]:
    """One Keras fit over all epochs; returns the history and whether the hook stopped it."""
    reporter = _EpochReporter(hook)
    callbacks = [reporter, keras.callbacks.TerminateOnNaN()]
    if val is not None:  # first: the pruner and early stopping read what it adds
        callbacks.insert(0, _Validation(val.x, labels_for(val.y, params, data), data.task))
    patience = int(params.get("early_stopping_patience") or 0)
    if patience and val is not None:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience))
    history = model.fit(
        train.x,
        labels_for(train.y, params, data),
        batch_size=int(params["batch_size"]),
        epochs=epochs,
        callbacks=callbacks,
        verbose=verbose,
    )
    _check_finite(history.history)
    return {k: [float(v) for v in vs] for k, vs in history.history.items()}, reporter.stopped


def _check_finite(history: dict[str, list]) -> None:
    for key, values in history.items():
        for epoch, value in enumerate(values, start=1):
            if not math.isfinite(value):
                raise TrainingDiverged(f"{key} became NaN/inf at epoch {epoch}")


def _mean_history(histories: list[dict[str, list[float]]]) -> dict[str, list[float]]:
    """Per-epoch mean over folds (over the epochs every fold ran, with early stopping)."""
    n = min(len(h["loss"]) for h in histories)
    return {
        k: [float(np.mean([h[k][e] for h in histories])) for e in range(n)] for k in histories[0]
    }


def train_and_evaluate(
    params: dict[str, Any],
    data: Dataset,
    seed: int = 0,
    on_epoch: EpochHook | None = None,
    verbose: int = 0,
) -> TrainResult:
    """Fit one model per fold; the first fold reports each epoch to `on_epoch` (the pruner).

    With k-fold validation (boston_housing) the objective is the mean over folds, and the
    test figures come from a model retrained on the whole training split, as seed 004 does.
    """
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    metric = val_metric(data.task)
    histories, models, start = [], [], time.perf_counter()
    for i, (train, val) in enumerate(folds(data)):
        models.append(_model(params, data))
        history, pruned = _fit(
            models[-1],
            params,
            data,
            train,
            val,
            int(params["epochs"]),
            on_epoch if i == 0 else None,
            verbose,
        )
        histories.append(history)
        if pruned:
            break
    history = _mean_history(histories)
    result = TrainResult(
        history=history,
        val_metric=metric,
        val_value=history[metric][-1],
        fold_values=[h[metric][-1] for h in histories],
        stopped_by="pruned" if pruned else "",
        n_params=models[0].count_params(),
        seconds=time.perf_counter() - start,
    )
    if not pruned:
        if result.epochs_run < int(params["epochs"]):
            result.stopped_by = "early_stopping"
        _evaluate(result, params, data, models[0] if len(models) == 1 else None, seed, verbose)
    return result


def _evaluate(result: TrainResult, params, data: Dataset, model, seed: int, verbose: int) -> None:
    """Test metrics; with k-fold validation, of a model retrained on the whole training split."""
    if model is None:
        keras.utils.set_random_seed(seed)
        model = _model(params, data)
        _fit(model, params, data, data.train, None, result.epochs_run, verbose=verbose)
    values, pred = evaluate(model, data.test.x, labels_for(data.test.y, params, data), data.task)
    result.test = {f"test_{k}": v for k, v in values.items()}
    result.model, result.test_true, result.test_pred = model, data.test.y, pred
    result.latency_ms = latency_ms(model, data.test.x)


def latency_ms(model: keras.Model, x, n: int = 1000, repeats: int = 3) -> float:
    """Milliseconds to score `n` examples in one eager forward pass, best of `repeats`."""
    part = x[:n]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        logits(model, part)
        times.append(time.perf_counter() - start)
    return min(times) * 1000 * n / part.shape[0]


def logits(model: keras.Model, x) -> np.ndarray:
    """Eager forward passes in chunks, up to the output layer's activation: no predict
    function to trace for a one-off model, and cross-entropy from logits, as Keras'
    compiled loss computes it (from clipped probabilities it differs for confident errors)."""
    import tensorflow as tf

    output = model.get_layer("output")
    activation, output.activation = output.activation, keras.activations.linear
    try:
        chunks = []
        for start in range(0, x.shape[0], EVAL_BATCH):
            part = x[start : start + EVAL_BATCH]
            if not isinstance(part, np.ndarray):  # scipy CSR -> tf.SparseTensor
                coo = part.tocoo()
                indices = np.stack([coo.row, coo.col], axis=1).astype("int64")
                part = tf.SparseTensor(indices, coo.data, coo.shape)
            chunks.append(np.asarray(model(part, training=False)))
    finally:
        output.activation = activation
    return np.concatenate(chunks)


FROM_LOGITS = {
    "binary_crossentropy": keras.losses.binary_crossentropy,
    "categorical_crossentropy": keras.losses.categorical_crossentropy,
    "sparse_categorical_crossentropy": keras.losses.sparse_categorical_crossentropy,
}


def evaluate(model: keras.Model, x, y_true: np.ndarray, task: str) -> tuple[dict, np.ndarray]:
    """The compiled loss and metric, as Keras' evaluate reports them, and the predictions."""
    z = logits(model, x)
    pred = np.asarray(model.get_layer("output").activation(z))
    if y_true.ndim < pred.ndim and pred.shape[-1] == 1:
        y_true = y_true.reshape(-1, 1)
    if model.loss in FROM_LOGITS:
        loss = FROM_LOGITS[model.loss](y_true, z, from_logits=True)
    else:
        loss = keras.losses.get(model.loss)(y_true, pred)
    metric = keras_metric(task, model.loss)
    metric.update_state(y_true, pred)
    return {"loss": float(np.mean(loss)), task_metric(task): float(metric.result())}, pred
