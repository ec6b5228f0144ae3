"""Seeded splits shared by every dataset: the seed-113 shuffle of Keras' loaders, a fifth
for test, and a table's validation by k-fold or by a held-out fifth."""

from __future__ import annotations

import numpy as np

from pipeline.errors import UserError

SHUFFLE_SEED = 113  # the seed Keras' imdb / reuters / boston_housing loaders shuffle with
TEST_FRACTION = 0.2
K_FOLDS = 4  # a small table's folds, as the seed notebook validated Boston housing
K_FOLD_BELOW = 2_000  # training rows under which a table validates by k-fold by default

Texts = tuple[list[str], np.ndarray]  # texts and their labels


def shuffled(n: int) -> np.ndarray:
    return np.random.RandomState(SHUFFLE_SEED).permutation(n)


def train_test(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Training and test rows, as Keras' boston_housing loader splits them."""
    order = shuffled(n)
    n_train = int(n * (1 - TEST_FRACTION))
    return order[:n_train], order[n_train:]


def table_rows(n: int, k_folds: int | None, where: object) -> tuple[tuple, int]:
    """A table's (train, validation or None, test) rows and its number of folds; `k_folds`
    None: by size (k-fold below K_FOLD_BELOW training rows, else a held-out fifth)."""
    train, test = train_test(n)
    if k_folds is None:
        k_folds = K_FOLDS if len(train) < K_FOLD_BELOW else 0
    if k_folds > len(train) // 2:
        raise UserError(f"{where}: {len(train)} training rows are too few for {k_folds} folds")
    if k_folds:
        return (train, None, test), k_folds
    n_val = int(len(train) * TEST_FRACTION)
    return (train[n_val:], train[:n_val], test), 0


def take(texts: list[str], labels: np.ndarray, rows) -> Texts:
    return [texts[i] for i in rows], labels[rows]


def seeded_texts(parts: dict[str, Texts]) -> dict[str, Texts]:
    """Train, validation and test texts from "train" (or "all") and an optional "test":
    validation is a fifth of train; without a test part, test is a fifth of all and
    validation a fifth of the rest."""
    texts, labels = parts.get("train", parts.get("all"))
    order = shuffled(len(texts))
    n_test = 0 if "test" in parts else int(len(texts) * TEST_FRACTION)
    n_val = int((len(texts) - n_test) * TEST_FRACTION)
    rows = {"test": order[:n_test], "val": order[n_test : n_test + n_val]}
    rows["train"] = order[n_test + n_val :]
    out = {key: take(texts, labels, r) for key, r in rows.items()}
    if "test" in parts:
        out["test"] = parts["test"]
    if min(len(y) for _, y in out.values()) == 0:
        raise UserError(f"too few texts ({len(texts)}) for train, validation and test splits")
    return out
