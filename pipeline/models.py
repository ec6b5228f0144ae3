"""Build and compile a Keras model from a plain dict of parameters (no Optuna in here)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras

from pipeline import backends, hyperparameters
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
        # XLA has no kernel for TensorFlow's sparse ops: a sparse model runs unjitted on
        # TensorFlow (`backends.jits_sparse_layers`). JAX multiplies its BCOO rows under jit
        # (Dense's own matmul); PyTorch gets dense rows.
        self.supports_jit = backends.jits_sparse_layers()

    def call(self, inputs, training=None):
        if not backends.sparse_tensors():
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
    if not backends.several_steps_per_call():
        return 1
    return max(1, min(32, 2048 // batch_size))


def model_input(
    params: dict[str, Any], n_features: int | tuple[int, ...], sparse: bool
) -> keras.KerasTensor:
    """The network's input: token ids (the embedding family without an encoder, or a
    builder of the user's that asked for them), else rows of features (bags of words,
    encoder vectors, table rows, arrays of any shape), sparse where the data is."""
    shape = tuple(n_features) if isinstance(n_features, tuple) else (n_features,)
    token_ids = params.get("representation") == "token_ids" or (
        params.get("family") == "embedding" and not params.get("encoder")
    )
    if token_ids:
        return keras.Input(shape=shape, dtype="int32", name="token_ids")
    return keras.Input(shape=shape, sparse=sparse, name="features")


def mlp(params: dict[str, Any], inputs: keras.KerasTensor) -> keras.KerasTensor:
    """The seeds' network: Dense layers (+ dropout) over the features. Sparse rows meet a
    SparseDense first."""
    x = inputs
    for i, units in enumerate(layer_units(params), start=1):
        dense = SparseDense if getattr(inputs, "sparse", False) and i == 1 else keras.layers.Dense
        x = dense(units, activation=params.get("activation", "relu"), name=f"dense_{i}")(x)
        if params.get("dropout", 0.0) > 0:
            x = keras.layers.Dropout(params["dropout"], name=f"dropout_{i}")(x)
    return x


def embedding(params: dict[str, Any], inputs: keras.KerasTensor) -> keras.KerasTensor:
    """Token ids embedded and pooled over the sequence (average pooling skips the padding),
    then the mlp's Dense layers; with a pretrained encoder, its vectors go to them directly."""
    if params.get("encoder"):
        return mlp(params, inputs)
    average = params.get("pooling", "average") == "average"
    x = keras.layers.Embedding(
        int(params["max_tokens"]),
        int(params.get("embedding_dim", 32)),
        mask_zero=average,
        name="embedding",
    )(inputs)
    pooling = keras.layers.GlobalAveragePooling1D if average else keras.layers.GlobalMaxPooling1D
    return mlp(params, pooling(name="pooling")(x))


Builder = Callable[[dict[str, Any], keras.KerasTensor], Any]  # -> the last hidden tensor or a Model
BUILDERS: dict[str, Builder] = {"mlp": mlp, "embedding": embedding}  # the built-in families


def build_model(
    params: dict[str, Any],
    task: str,
    n_features: int | tuple[int, ...],
    n_classes: int = 0,
    sparse: bool = False,
    builder: Builder | None = None,
) -> keras.Model:
    """The one door from parameters to a compiled model, for every family: the builder (the
    family's, or the user's) turns the input into its last hidden tensor, to which the
    task's output layer is added, or into a whole model whose output must fit the task;
    then the loss, optimizer and metric. A Keras Tuner `build_model(hp)` is answered from
    `params` (else each call's default) unless the caller bound it to a search's trial."""
    inputs = model_input(params, n_features, sparse)
    family = params.get("family", "mlp")
    if builder is None and family not in BUILDERS:
        raise ValueError(f"the {family} family needs its builder function")
    build = builder or BUILDERS[family]
    if hyperparameters.takes_hp(build):
        build = hyperparameters.bind(build, hyperparameters.given_or_default(params))
    model = _as_model(build(dict(params), inputs), inputs, task, n_classes)
    _compile(model, params, task)
    # The optimizer's slots now, not inside the first traced train step: variables created
    # there make TensorFlow trace the step twice (IMDB 16-16: 4 epochs in 0.85 s, not 1.0).
    model.optimizer.build(model.trainable_variables)
    return model


def _compile(model: keras.Model, params: dict[str, Any], task: str) -> None:
    """The space's loss, optimizer and learning rate; a model the builder compiled keeps its
    own optimizer and loss. Either way with the task's metric, which trials are scored by."""
    own = getattr(model, "compiled", False)
    loss = model.loss if own else params["loss"]
    if loss not in TASK_LOSSES[task]:
        whose = "the model's compiled loss" if own else "loss"
        fitting = ", ".join(TASK_LOSSES[task])
        raise ValueError(f"{whose} {loss!r} does not fit a {task} task; use one of {fitting}")
    if own:
        optimizer = model.optimizer
    else:
        learning_rate = float(params.get("learning_rate", 1e-3))
        optimizer = OPTIMIZERS[params.get("optimizer", "rmsprop")](learning_rate)
    model.compile(
        optimizer=optimizer,
        loss=loss,
        metrics=[keras_metric(task, loss)],
        steps_per_execution=steps_per_execution(int(params.get("batch_size", 32))),
    )


class BuildError(ValueError):
    """A builder's result that cannot be the task's model."""


def _with_inputs(model: keras.Model, inputs) -> keras.Model:
    """A model that declares no input yet (`keras.Sequential([...])` without `keras.Input`,
    as Keras Tuner's examples write it) built for the input it was given; the compile of
    the user's stays with it."""
    try:
        model.inputs  # noqa: B018  (Keras raises for a model with no inputs yet)
        return model
    except (ValueError, AttributeError):  # Keras 3.15 raises the latter
        pass
    if isinstance(model, keras.Sequential):
        model.build(tuple(inputs.shape))
        return model
    wrapper = keras.Model(inputs, model(inputs))  # a subclassed model, called on it
    if getattr(model, "compiled", False):
        wrapper.compile(optimizer=model.optimizer, loss=model.loss)
    return wrapper


def _fits(declared: tuple, given: tuple) -> bool:
    """Whether a model's own input takes the data's rows (None: any size)."""
    return len(declared) == len(given) and all(
        d is None or g is None or d == g for d, g in zip(declared, given, strict=True)
    )


def _as_model(built: Any, inputs, task: str, n_classes: int) -> keras.Model:
    """The builder's result as the task's model: a hidden tensor gets the output layer; a
    whole model must end in what the task's loss reads (one value, or one per class)."""
    if isinstance(built, keras.Model):
        built = _with_inputs(built, inputs)
        if len(built.inputs) != 1 or not _fits(tuple(built.inputs[0].shape), tuple(inputs.shape)):
            raise BuildError(
                f"the model must take the input it was given, {tuple(inputs.shape)} "
                f"{inputs.dtype}: keras.Model(inputs, ...)"
            )
        if len(built.outputs) != 1:
            raise BuildError(f"the model has {len(built.outputs)} outputs; the task needs one")
        width = 1 if task in ("binary", "regression") else n_classes
        shape = tuple(built.outputs[0].shape)
        if len(shape) != 2 or shape[1] != width:
            raise BuildError(
                f"the model's output has shape {shape}; a {task} task needs (None, {width})"
            )
        return built
    if isinstance(built, keras.KerasTensor):
        if len(built.shape) != 2:
            raise BuildError(
                f"the last hidden tensor has shape {tuple(built.shape)}; the output layer "
                "needs (None, units): flatten or pool it first"
            )
        return keras.Model(inputs, output_layer(task, n_classes)(built))
    raise BuildError(f"returned {type(built).__name__}; expected a Keras tensor or a keras.Model")


def for_inference(model: keras.Model) -> keras.Model:
    """The same network (its layers and weights shared, their names kept) without its
    compiled state, to save for predictions: a saved model holds its optimizer's state,
    twice the weights again with Adam (a Reuters trial's file: 50 MB, 16.7 MB without).
    Keras 3 saves have no option to leave it out. A model without symbolic inputs (a
    subclassed model of the user's) is returned as it is."""
    try:
        inputs, outputs = model.inputs, model.outputs
    except (AttributeError, ValueError):
        return model
    if not inputs or not outputs:
        return model
    one = (inputs[0] if len(inputs) == 1 else inputs, outputs[0] if len(outputs) == 1 else outputs)
    return keras.Model(*one, name=model.name)  # one input as one tensor, as the model took it
