"""Train one configuration on a dataset and evaluate it with Keras: the body of every trial."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
from sklearn.model_selection import KFold

from pipeline import backends, stopping
from pipeline.datasets import Dataset, Split
from pipeline.errors import TrainingDiverged
from pipeline.evaluation import evaluate, latency_ms, probabilities
from pipeline.metrics import lower_is_better, val_metric
from pipeline.models import Builder, build_model

EpochHook = Callable[[int, dict[str, float]], bool]  # (epoch, logs) -> stop now?


@dataclass
class TrainResult:
    history: dict[str, list[float]]  # per epoch; mean over folds with k-fold validation
    val_metric: str
    val_value: float
    test: dict[str, float] = field(default_factory=dict)  # test_loss, test_accuracy|test_mae
    fold_values: list[float] = field(default_factory=list)
    stopped_by: str = ""  # "", "pruned" or "early_stopping"
    best_epoch: int = 0  # the epoch whose weights the result keeps (1-based)
    n_params: int = 0
    latency_ms: float = 0.0  # to score 1,000 examples (test set, one eager forward pass)
    seconds: float = 0.0
    model: keras.Model | None = None
    test_true: np.ndarray | None = None
    test_pred: np.ndarray | None = None
    # the validation rows' labels and predictions (with k-fold: out of fold, in the
    # training split's order), from the epoch each model keeps: what an ensemble is
    # chosen on
    val_true: np.ndarray | None = None
    val_pred: np.ndarray | None = None
    member: str = "model"  # what `model` is: "model", or "fold-average" (k-fold)

    @property
    def epochs_run(self) -> int:
        return len(self.history.get("loss", []))


def train_and_evaluate(
    params: dict[str, Any],
    data: Dataset,
    seed: int = 0,
    on_epoch: EpochHook | None = None,
    verbose: int = 0,
    keep_best: bool = False,
    builder: Builder | None = None,
) -> TrainResult:
    """Fit one model per fold; the first fold reports each epoch to `on_epoch` (the pruner).

    With k-fold validation (boston_housing) the objective is the mean over folds, and the
    test figures come from the average of the fold models (a search, `keep_best`) or from
    a model retrained on the whole training split, as seed 004 does (a seed table's row).
    `builder`: the user's build function (a custom space's), else the family's own.
    `keep_best`: score the epoch with the best validation metric (the mean over folds) and
    keep its weights (k-fold: retrain for that many epochs); else the last epoch's.
    """
    keras.backend.clear_session()
    backends.set_seed(seed)
    metric = val_metric(data.task)
    histories, models, start = [], [], time.perf_counter()
    splits = folds(data)
    for i, (train, val) in enumerate(splits):
        models.append(_model(params, data, builder))
        params = {**params, "loss": models[-1].loss}  # a compiled model of the user's keeps its own
        history, pruned = _fit(
            model=models[-1],
            params=params,
            data=data,
            train=train,
            val=val,
            epochs=int(params["epochs"]),
            hook=on_epoch if i == 0 else None,
            verbose=verbose,
            keep_best=keep_best,
        )
        histories.append(history)
        if pruned:
            break
    history = _mean_history(histories)
    best = _best_epoch(history[metric], lower_is_better(metric)) if keep_best else None
    at = (best or len(history[metric])) - 1
    result = TrainResult(
        history=history,
        val_metric=metric,
        val_value=history[metric][at],
        fold_values=[h[metric][at] for h in histories],
        stopped_by="pruned" if pruned else "",
        best_epoch=at + 1,
        n_params=models[0].count_params(),
        seconds=time.perf_counter() - start,
    )
    if not pruned:
        if result.epochs_run < int(params["epochs"]):
            result.stopped_by = "early_stopping"
        result.val_true, result.val_pred = _validation_predictions(models, splits)
        test_model = models[0] if len(models) == 1 else None
        if len(models) > 1 and keep_best:
            test_model, result.member = _average(models, params, data), "fold-average"
        _evaluate(
            result=result,
            params=params,
            data=data,
            model=test_model,
            seed=seed,
            verbose=verbose,
            builder=builder,
        )
    return result


def _best_epoch(values: list[float], minimize: bool) -> int:
    """1-based epoch of the best value (the first of equals)."""
    finite = [v if math.isfinite(v) else math.inf * (1 if minimize else -1) for v in values]
    return int(np.argmin(finite) if minimize else np.argmax(finite)) + 1


def _validation_predictions(models: list[keras.Model], splits) -> tuple[np.ndarray, np.ndarray]:
    """Each validation row's label and prediction by the model that did not train on it:
    the one model's on the validation split, or each fold model's on its own fold (out of
    fold), in the training split's order."""
    true = np.concatenate([val.y for _, val in splits])
    pairs = zip(models, splits, strict=True)
    pred = np.concatenate([probabilities(model, val.x) for model, (_, val) in pairs])
    return true, pred.astype(np.float32)


def _average(models: list[keras.Model], params, data: Dataset) -> keras.Model:
    """The k fold models (each at its best epoch) as one model averaging their predictions:
    a search's test model with k-fold validation, the model that the out-of-fold
    predictions describe. On Boston's 102 test rows one model retrained on all 404 rows
    varies by more than the search can gain (test MAE 2.5 to 3.5 for validation MAEs
    within 0.05); the average of the folds' models varies far less."""
    inputs = keras.Input(shape=data.input_shape, name="features")
    output = keras.layers.Average(name="output")([m(inputs) for m in models])
    model = keras.Model(inputs, output)
    model.compile(loss=params["loss"])
    return model


def _evaluate(
    result: TrainResult, params, data: Dataset, model, seed: int, verbose: int, builder
) -> None:
    """Test metrics; with k-fold validation, of a model retrained on the whole training split
    (a seed table's row, as seed 004 does) or of the folds' average (a search's trial, for
    regression and classification alike)."""
    if model is None:
        backends.set_seed(seed)
        model = _model(params, data, builder)
        _fit(
            model=model,
            params=params,
            data=data,
            train=data.train,
            val=None,
            epochs=result.best_epoch,
            verbose=verbose,
        )
    values, pred = evaluate(model, data.test.x, labels_for(data.test.y, params, data), data.task)
    result.test = {f"test_{k}": v for k, v in values.items()}
    result.model, result.test_true, result.test_pred = model, data.test.y, pred
    result.latency_ms = latency_ms(model, data.test.x)


def _fit(
    model,
    params,
    data,
    train: Split,
    val: Split | None,
    epochs: int,
    hook: EpochHook | None = None,
    verbose: int = 0,
    keep_best: bool = False,
) -> tuple[dict, bool]:
    """One Keras fit over all epochs; returns the history and whether the hook stopped it.
    `keep_best`: end with the best validation epoch's weights."""
    reporter = _EpochReporter(hook)
    callbacks = [reporter, _StopOnNaN()]
    metric = val_metric(data.task)
    if val is not None:  # first: the pruner and early stopping read what it adds
        callbacks.insert(0, _Validation(val.x, labels_for(val.y, params, data), data.task))
        if keep_best:
            callbacks.append(_BestEpoch(metric))
    patience = int(params.get("early_stopping_patience") or 0)
    if patience and val is not None:
        mode = "min" if lower_is_better(metric) else "max"
        stop = keras.callbacks.EarlyStopping(monitor=metric, mode=mode, patience=patience)
        callbacks.append(stop)
    labels = labels_for(train.y, params, data)
    rows = backends.batches(train.x, labels, int(params["batch_size"]))
    _build_compiled(model, train.x[:2], labels[:2])  # after `batches`: its shuffle's seed
    history = model.fit(**rows, epochs=epochs, callbacks=callbacks, verbose=verbose)
    _check_finite(history.history)
    return {k: [float(v) for v in vs] for k, vs in history.history.items()}, reporter.stopped


def _build_compiled(model: keras.Model, x, y: np.ndarray) -> None:
    """Create the compiled loss's and metrics' state now, eagerly on two rows, as
    `build_model` does the optimizer's: state created inside the first traced train step
    makes TensorFlow trace it twice (IMDB 16-16, 4 epochs: fit in 0.65 s instead of 0.85 s).
    Leaves the metrics at zero, as `fit` finds them."""
    if not isinstance(x, np.ndarray):
        x = backends.sparse_input(x)
    predicted = model(x, training=False)
    model.compute_loss(x=x, y=y, y_pred=predicted)
    model.compute_metrics(x, y, predicted)
    model.reset_metrics()


def _mean_history(histories: list[dict[str, list[float]]]) -> dict[str, list[float]]:
    """Per-epoch mean over folds (over the epochs every fold ran, with early stopping)."""
    n = min(len(h["loss"]) for h in histories)
    return {
        k: [float(np.mean([h[k][e] for h in histories])) for e in range(n)] for k in histories[0]
    }


def _check_finite(history: dict[str, list]) -> None:
    for key, values in history.items():
        for epoch, value in enumerate(values, start=1):
            if not math.isfinite(value):
                raise TrainingDiverged(f"{key} became {value} at epoch {epoch}")


def folds(data: Dataset) -> list[tuple[Split, Split]]:
    """(train, validation) pairs: the fixed split, or k contiguous folds as seed 004 does."""
    if data.val is not None:
        return [(data.train, data.val)]
    splitter = KFold(n_splits=data.k_folds, shuffle=False)
    return [(data.train.take(a), data.train.take(b)) for a, b in splitter.split(data.train.y)]


def labels_for(y: np.ndarray, params: dict[str, Any], data: Dataset) -> np.ndarray:
    if params["loss"] == "categorical_crossentropy":
        return keras.utils.to_categorical(y, data.n_classes)
    return y


def _model(params: dict[str, Any], data: Dataset, builder: Builder | None = None) -> keras.Model:
    sparse = not isinstance(data.train.x, np.ndarray) and backends.takes_sparse_input()
    return build_model(
        params, data.task, data.input_shape, data.n_classes, sparse=sparse, builder=builder
    )


class _Validation(keras.callbacks.Callback):
    """val_loss and val_<metric> after each epoch from one eager forward pass: the same
    values as Keras' validation_data, without tracing and running a test function per
    model (about 0.5 s of a 4 s IMDB trial)."""

    def __init__(self, x, y: np.ndarray, task: str) -> None:
        super().__init__()
        self.x, self.y, self.task = x, y, task

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        values, _ = evaluate(self.model, self.x, self.y, self.task, keep=True)
        logs.update({f"val_{k}": v for k, v in values.items()})


class _BestEpoch(keras.callbacks.Callback):
    """Keeps the weights of the epoch with the best validation metric and puts them back
    when training ends, so a trial is scored (and tested) on its best epoch, not on an
    overfit last one. Keras' EarlyStopping(restore_best_weights) restores only when it
    stops training early, so it cannot do this for a run that uses its whole budget."""

    def __init__(self, metric: str) -> None:
        super().__init__()
        self.metric, self.minimize = metric, lower_is_better(metric)
        self.best, self.weights = None, None

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        value = (logs or {}).get(self.metric)
        if value is None or not math.isfinite(value):
            return
        if self.best is None or (value < self.best if self.minimize else value > self.best):
            self.best, self.weights = value, self.model.get_weights()

    def on_train_end(self, logs=None) -> None:
        if self.weights is not None:
            self.model.set_weights(self.weights)


class _StopOnNaN(keras.callbacks.Callback):
    """Keras' TerminateOnNaN without the line it prints: `_check_finite` then raises
    `TrainingDiverged`, naming the epoch and the loss, which the CLI reports once."""

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.model.stop_training = True


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
