"""Train one configuration on a dataset and evaluate it: the body of every trial."""

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

from pipeline.datasets import Dataset, Split
from pipeline.models import build_model, layer_units

EVAL_BATCH = 4096
EpochHook = Callable[[int, dict[str, float]], bool]  # (epoch, mean logs) -> stop now?


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


def metric_name(task: str) -> str:
    return "mae" if task == "regression" else "accuracy"


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
    sparse = data.task != "regression" and not isinstance(data.train.x, np.ndarray)
    return build_model(params, data.task, data.n_features, data.n_classes, sparse=sparse)


def _fit_epoch(model, params, data, train: Split, val: Split | None, epoch: int, verbose: int):
    val_data = None if val is None else (val.x, labels_for(val.y, params, data))
    history = model.fit(
        train.x,
        labels_for(train.y, params, data),
        batch_size=int(params["batch_size"]),
        initial_epoch=epoch,
        epochs=epoch + 1,
        validation_data=val_data,
        validation_batch_size=EVAL_BATCH,
        verbose=verbose,
    )
    return {key: float(values[-1]) for key, values in history.history.items()}


def _check_finite(logs: dict[str, float], epoch: int) -> None:
    bad = [key for key, value in logs.items() if not math.isfinite(value)]
    if bad:
        raise TrainingDiverged(f"{', '.join(bad)} became NaN/inf at epoch {epoch + 1}")


class _Patience:
    """Early stopping on the mean validation loss (Keras' EarlyStopping, without restore)."""

    def __init__(self, patience: int) -> None:
        self.patience, self.best, self.waited = patience, math.inf, 0

    def should_stop(self, val_loss: float) -> bool:
        if val_loss < self.best:
            self.best, self.waited = val_loss, 0
            return False
        self.waited += 1
        return 0 < self.patience <= self.waited


def train_and_evaluate(
    params: dict[str, Any],
    data: Dataset,
    seed: int = 0,
    on_epoch: EpochHook | None = None,
    verbose: int = 0,
) -> TrainResult:
    """Fit the fold models in lockstep, one epoch at a time, reporting mean logs per epoch."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    pairs = folds(data)
    models = [_model(params, data) for _ in pairs]
    history: dict[str, list[float]] = {}
    patience = _Patience(int(params.get("early_stopping_patience") or 0))
    stopped_by, start = "", time.perf_counter()
    for epoch in range(int(params["epochs"])):
        logs = [
            _fit_epoch(m, params, data, tr, va, epoch, verbose)
            for m, (tr, va) in zip(models, pairs, strict=True)
        ]
        mean = {key: float(np.mean([log[key] for log in logs])) for key in logs[0]}
        _check_finite(mean, epoch)
        for key, value in mean.items():
            history.setdefault(key, []).append(value)
        if on_epoch is not None and on_epoch(epoch, mean):
            stopped_by = "pruned"
            break
        if patience.should_stop(mean["val_loss"]):
            stopped_by = "early_stopping"
            break
    val_metric = "val_" + metric_name(data.task)
    result = TrainResult(
        history=history,
        val_metric=val_metric,
        val_value=history[val_metric][-1],
        fold_values=[log[val_metric] for log in logs],
        stopped_by=stopped_by,
        n_params=models[0].count_params(),
        seconds=time.perf_counter() - start,
    )
    if stopped_by != "pruned":
        _evaluate(result, params, data, models[0] if len(models) == 1 else None, seed, verbose)
    return result


def _evaluate(result: TrainResult, params, data: Dataset, model, seed: int, verbose: int) -> None:
    """Test metrics; with k-fold validation, of a model retrained on the whole training split."""
    if model is None:
        keras.utils.set_random_seed(seed)
        model = _model(params, data)
        for epoch in range(result.epochs_run):
            _fit_epoch(model, params, data, data.train, None, epoch, verbose)
    scores = model.evaluate(
        data.test.x,
        labels_for(data.test.y, params, data),
        batch_size=EVAL_BATCH,
        verbose=0,
        return_dict=True,
    )
    result.test = {f"test_{key}": float(value) for key, value in scores.items()}
    result.model = model
    result.test_true = data.test.y
    result.test_pred = model.predict(data.test.x, batch_size=EVAL_BATCH, verbose=0)


def describe_params(params: dict[str, Any]) -> dict[str, Any]:
    """Params as logged: units as "16,16" and one entry per layer."""
    units = layer_units(params)
    flat = {k: v for k, v in params.items() if k != "units"}
    flat |= {"n_layers": len(units), "units": ",".join(map(str, units))}
    return flat | {f"units_{i}": u for i, u in enumerate(units, start=1)}
