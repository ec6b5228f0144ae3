"""The floor of a seed-recipe trial on this machine: the project's network (Dense 16-16-1,
rmsprop, batch 512, 4 epochs, IMDB's training split) trained by a minimal TensorFlow loop
(one tf.function step) over sparse batches built once, tracing included; and the same plus
what a trial must also do (a validation pass per epoch, a test pass). Then the project's
own `train_and_evaluate` on the same data, in the same process; and where they differ:
tracing (the floor's first step against the first epoch of Keras' `fit`, each less a later
epoch) and the time per epoch. Prints one JSON line.

    PIPELINE_DATA_DIR=../shared/data python bench/floor.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
RECIPE = {
    "units": [16, 16],
    "loss": "binary_crossentropy",
    "epochs": 4,
    "batch_size": 512,
    "optimizer": "rmsprop",
    "learning_rate": 0.001,
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from pipeline import datasets
    from pipeline.backends import devices
    from pipeline.training import train_and_evaluate

    devices()  # the device settings a trial runs with, for both
    data = datasets.load_dataset("imdb")
    train_and_evaluate(RECIPE, data)  # TensorFlow's first-use costs, outside every timing
    gc.collect()
    gc.freeze()  # as the project's trial loop does (engine.trials.work)
    floor, floor_eval, project, parts = [], [], [], []
    for seed in range(args.repeats):
        floor.append(minimal_loop(data, seed, evaluate=False)[0])
        seconds, accuracy = minimal_loop(data, seed, evaluate=True)
        floor_eval.append(seconds)
        start = time.perf_counter()
        result = train_and_evaluate(RECIPE, data, seed=seed, keep_best=True)
        project.append(time.perf_counter() - start)
        parts.append(fit_parts(data, seed))
    median = {k: statistics.median(p[k] for p in parts) for k in parts[0]}
    print(
        json.dumps(
            {
                "floor_s": statistics.median(floor),
                "floor_with_eval_s": statistics.median(floor_eval),
                "project_bare_s": statistics.median(project),
                "floor_test_accuracy": accuracy,
                "project_test_accuracy": result.test["test_accuracy"],
            }
            | median
        )
    )


def fit_parts(data, seed: int) -> dict[str, float]:
    """Tracing and an epoch, for the floor's step and for Keras' `fit` as a trial runs it
    (model built and compiled as `train_and_evaluate` does: `build_model`, then `_fit`'s
    `batches` and `_build_compiled`)."""
    import keras

    from pipeline import backends, training

    epoch = minimal_loop(data, seed, evaluate=False, epochs=1)[0]
    two = minimal_loop(data, seed, evaluate=False, epochs=2)[0]
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    start = time.perf_counter()
    model = training._model(RECIPE, data)
    rows = backends.batches(data.train.x, data.train.y, RECIPE["batch_size"])
    training._build_compiled(model, data.train.x[:2], data.train.y[:2])
    built = time.perf_counter()
    model.fit(**rows, epochs=1, verbose=0)
    first = time.perf_counter()
    model.fit(**rows, epochs=1, verbose=0)
    later = time.perf_counter() - first
    return {
        "floor_epoch_s": two - epoch,
        "floor_trace_s": epoch - (two - epoch),
        "fit_build_s": built - start,
        "fit_epoch_s": later,
        "fit_trace_s": (first - built) - later,
    }


def minimal_loop(data, seed: int, evaluate: bool, epochs: int = 0) -> tuple[float, float]:
    """Seconds to build and train the network (and evaluate it), and its test accuracy."""
    import keras
    import numpy as np
    import tensorflow as tf

    from pipeline.evaluation import sparse_tensor
    from pipeline.models import build_model

    keras.utils.set_random_seed(seed)
    size = RECIPE["batch_size"]
    x, y = data.train.x, data.train.y.reshape(-1, 1)
    batches = [
        (sparse_tensor(x[i : i + size]), tf.constant(y[i : i + size]))
        for i in range(0, x.shape[0], size)
    ]
    val, test = sparse_tensor(data.val.x), sparse_tensor(data.test.x)
    start = time.perf_counter()
    model = build_model(RECIPE, "binary", x.shape[1], 2, sparse=True)
    loss_fn, optimizer = keras.losses.BinaryCrossentropy(), model.optimizer

    # one trace for every batch (the last is smaller); build_model built the optimizer
    spec = (tf.SparseTensorSpec([None, x.shape[1]], tf.float32), tf.TensorSpec([None, 1]))

    @tf.function(input_signature=spec)
    def step(features, labels):
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, model(features, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        return loss

    for _ in range(epochs or RECIPE["epochs"]):
        for features, labels in batches:
            step(features, labels)
        if evaluate:
            np.asarray(model(val, training=False))
    accuracy = 0.0
    if evaluate:
        predicted = np.asarray(model(test, training=False))[:, 0] > 0.5
        accuracy = float(np.mean(predicted == (data.test.y > 0.5)))
    return time.perf_counter() - start, accuracy


if __name__ == "__main__":
    main()
