"""Build and compile a Keras model from a plain dict of parameters (no Optuna in here)."""

from __future__ import annotations

from typing import Any

import keras

from pipeline.params import layer_units
from pipeline.spaces import TASK_LOSSES

OPTIMIZERS = {
    "rmsprop": keras.optimizers.RMSprop,
    "adam": keras.optimizers.Adam,
    "sgd": keras.optimizers.SGD,
}


@keras.saving.register_keras_serializable(package="pipeline")
class SparseDense(keras.layers.Dense):
    """Dense for sparse rows (bags of words): multiplies a SparseTensor with
    `tf.sparse.sparse_dense_matmul`, 16 kernel columns at a time. Keras' Dense sends it
    through `embedding_lookup_sparse` instead, which costs 3.5x as much per training step of
    the seeds' IMDB network (9.0 against 2.6 ms for 512 rows of 10,000 columns, 2-core CPU).
    TensorFlow's CPU kernel is fast below 32 columns and ~10x slower from 32 on (512 IMDB
    rows: 0.49 ms at 31 columns, 3.6 ms at 32); in blocks of 16, 64 units take 1.6 ms
    instead of 6.9. Dense input takes Keras' own path."""

    BLOCK = 16

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # XLA has no kernel for TensorFlow's sparse ops: with a GPU visible, Keras'
        # jit_compile="auto" turns XLA on for every layer that supports it, and fit fails at
        # the first step ("Detected at node .../SparseTensorDenseMatMul"). So a sparse model
        # runs unjitted on TensorFlow. JAX multiplies its BCOO rows under jit (Dense's own
        # matmul); PyTorch gets dense rows.
        self.supports_jit = keras.backend.backend() != "tensorflow"

    def call(self, inputs, training=None):
        if keras.backend.backend() != "tensorflow":
            return super().call(inputs, training=training)
        import tensorflow as tf

        if not isinstance(inputs, tf.SparseTensor):
            return super().call(inputs, training=training)
        widths = [min(self.BLOCK, self.units - i) for i in range(0, self.units, self.BLOCK)]
        blocks = tf.split(self.kernel, widths, axis=1)
        x = tf.concat([tf.sparse.sparse_dense_matmul(inputs, b) for b in blocks], axis=1)
        if self.bias is not None:
            x = x + self.bias
        return self.activation(x) if self.activation is not None else x


# what `keras.models.load_model` needs to read a saved model back
CUSTOM_OBJECTS = {"pipeline>SparseDense": SparseDense}


def output_layer(task: str, n_classes: int) -> keras.layers.Dense:
    if task == "binary":
        return keras.layers.Dense(1, activation="sigmoid", name="output")
    if task == "multiclass":
        return keras.layers.Dense(n_classes, activation="softmax", name="output")
    return keras.layers.Dense(1, name="output")


def keras_metric(task: str, loss: str) -> keras.metrics.Metric:
    """Accuracy for classification (matching the label format the loss implies), else MAE."""
    if task == "binary":
        return keras.metrics.BinaryAccuracy(name="accuracy")
    if task == "multiclass" and loss == "sparse_categorical_crossentropy":
        return keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    if task == "multiclass":
        return keras.metrics.CategoricalAccuracy(name="accuracy")
    return keras.metrics.MeanAbsoluteError(name="mae")


def steps_per_execution(batch_size: int) -> int:
    """Run several small batches per TensorFlow call: per-step Python overhead dominates
    these tiny networks (boston at batch 1: 2.3x faster at 32 steps per call). Keras on
    PyTorch runs one step per call."""
    if keras.backend.backend() == "torch":
        return 1
    return max(1, min(32, 2048 // batch_size))


def _features(params: dict[str, Any], n_features: int, sparse: bool):
    """The input, and what the hidden layers see: the features themselves (bags of words,
    encoder vectors, tabular rows), or for the embedding family token ids embedded and
    pooled over the sequence (average pooling skips the padding)."""
    if params.get("family") != "embedding" or params.get("encoder"):
        inputs = keras.Input(shape=(n_features,), sparse=sparse, name="features")
        return inputs, inputs
    inputs = keras.Input(shape=(n_features,), dtype="int32", name="token_ids")
    average = params.get("pooling", "average") == "average"
    x = keras.layers.Embedding(
        int(params["max_tokens"]),
        int(params.get("embedding_dim", 32)),
        mask_zero=average,
        name="embedding",
    )(inputs)
    pooling = keras.layers.GlobalAveragePooling1D if average else keras.layers.GlobalMaxPooling1D
    return inputs, pooling(name="pooling")(x)


def build_model(
    params: dict[str, Any], task: str, n_features: int, n_classes: int = 0, sparse: bool = False
) -> keras.Model:
    """Hidden Dense layers (+ dropout), the task's output layer, compiled: loss, optimizer."""
    loss = params["loss"]
    if loss not in TASK_LOSSES[task]:
        raise ValueError(
            f"loss {loss!r} does not fit a {task} task; use one of {TASK_LOSSES[task]}"
        )
    inputs, x = _features(params, n_features, sparse)
    for i, units in enumerate(layer_units(params), start=1):
        dense = SparseDense if sparse and i == 1 else keras.layers.Dense
        x = dense(units, activation=params.get("activation", "relu"), name=f"dense_{i}")(x)
        if params.get("dropout", 0.0) > 0:
            x = keras.layers.Dropout(params["dropout"], name=f"dropout_{i}")(x)
    model = keras.Model(inputs, output_layer(task, n_classes)(x))
    learning_rate = float(params.get("learning_rate", 1e-3))
    optimizer = OPTIMIZERS[params.get("optimizer", "rmsprop")](learning_rate)
    model.compile(
        optimizer=optimizer,
        loss=loss,
        metrics=[keras_metric(task, loss)],
        steps_per_execution=steps_per_execution(int(params.get("batch_size", 32))),
    )
    # The optimizer's slots now, not inside the first traced train step: variables created
    # there make TensorFlow trace the step twice (IMDB 16-16: 4 epochs in 0.85 s, not 1.0).
    model.optimizer.build(model.trainable_variables)
    return model
