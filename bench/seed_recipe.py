"""The seed notebooks' IMDB recipe as written, for one configuration per process.

Texts -> TextVectorization integer sequences (top 10,000 words) -> the seeds'
`vectorize_sequences` (dense float64) -> Sequential Dense -> rmsprop, batch 512,
first 10,000 training reviews for validation. Prints one JSON line of timings.

    python bench/seed_recipe.py --units 16,16 --loss binary_crossentropy --epochs 4
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def vectorize_sequences(sequences, dimension=10000):
    import numpy as np

    results = np.zeros((len(sequences), dimension))
    for i, sequence in enumerate(sequences):
        results[i, sequence] = 1.0
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--units", default="16,16")
    parser.add_argument("--loss", default="binary_crossentropy")
    parser.add_argument("--activation", default="relu")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()

    import keras
    import numpy as np

    from pipeline import settings
    from pipeline.datasets.builtin import imdb

    reviews = imdb.read_reviews(settings.data_dir() / "aclImdb_v1.tar.gz")
    train_texts, train_labels = reviews["train"]
    test_texts, test_labels = reviews["test"]
    order = np.random.RandomState(113).permutation(len(train_texts))
    train_texts = [train_texts[i] for i in order]
    train_labels = train_labels[order]
    loaded = time.perf_counter()

    # the Keras dataset's num_words=10000 word indices, then the seeds' one-hot arrays
    vectorizer = keras.layers.TextVectorization(max_tokens=10000, output_mode="int")
    vectorizer.adapt(train_texts[10000:], batch_size=2048)
    train_data = [s[s > 0] for s in vectorizer(train_texts).numpy()]
    test_data = [s[s > 0] for s in vectorizer(test_texts).numpy()]
    x_train = vectorize_sequences(train_data)
    x_test = vectorize_sequences(test_data)
    y_train = np.asarray(train_labels).astype("float32")
    y_test = np.asarray(test_labels).astype("float32")
    vectorized = time.perf_counter()

    keras.utils.set_random_seed(args.seed)
    model = keras.models.Sequential()
    model.add(keras.Input(shape=(10000,)))
    for units in args.units.split(","):
        model.add(keras.layers.Dense(int(units), activation=args.activation))
    model.add(keras.layers.Dense(1, activation="sigmoid"))
    model.compile(optimizer="rmsprop", loss=args.loss, metrics=["accuracy"])
    x_val, partial_x_train = x_train[:10000], x_train[10000:]
    y_val, partial_y_train = y_train[:10000], y_train[10000:]
    history = model.fit(
        partial_x_train,
        partial_y_train,
        epochs=args.epochs,
        batch_size=512,
        validation_data=(x_val, y_val),
        verbose=0,
    )
    fitted = time.perf_counter()
    test_loss, test_acc = model.evaluate(x_test, y_test, verbose=0)
    done = time.perf_counter()
    print(
        json.dumps(
            {
                "read_s": loaded - start,
                "vectorize_s": vectorized - loaded,
                "fit_s": fitted - vectorized,
                "evaluate_s": done - fitted,
                "total_s": done - start,
                "val_accuracy": history.history["val_accuracy"][-1],
                "test_loss": test_loss,
                "test_accuracy": test_acc,
            }
        )
    )


if __name__ == "__main__":
    main()
