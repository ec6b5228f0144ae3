"""The floor of a seed-recipe trial on this machine: the project's network (Dense 16-16-1,
rmsprop, batch 512, 4 epochs, IMDB's training split) trained by a minimal TensorFlow loop
(one tf.function step) over sparse batches built once, tracing included; and the same plus
what a trial must also do (a validation pass per epoch, a test pass). Then the project's
own `train_and_evaluate` on the same data, in the same process. Prints one JSON line.

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
    from pipeline.training import train_and_evaluate

    data = datasets.load_dataset("imdb")
    train_and_evaluate(RECIPE, data)  # TensorFlow's first-use costs, outside every timing
    gc.collect()
    gc.freeze()  # as the project's trial loop does (search.runner.work)
    floor, floor_eval, project = [], [], []
    for seed in range(args.repeats):
        floor.append(minimal_loop(data, seed, evaluate=False)[0])
        seconds, accuracy = minimal_loop(data, seed, evaluate=True)
        floor_eval.append(seconds)
        start = time.perf_counter()
        result = train_and_evaluate(RECIPE, data, seed=seed, keep_best=True)
        project.append(time.perf_counter() - start)
    print(
        json.dumps(
            {
                "floor_s": statistics.median(floor),
                "floor_with_eval_s": statistics.median(floor_eval),
                "project_bare_s": statistics.median(project),
                "floor_test_accuracy": accuracy,
                "project_test_accuracy": result.test["test_accuracy"],
            }
        )
    )


def minimal_loop(data, seed: int, evaluate: bool) -> tuple[float, float]:
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

    for _ in range(RECIPE["epochs"]):
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
