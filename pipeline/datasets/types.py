"""The values a dataset loads into: splits of features and labels, and the options that
change the features."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.datasets import tabular, text


@dataclass(frozen=True)
class Split:
    x: Any  # scipy.sparse.csr_matrix (text) or np.ndarray (tabular), float32
    y: np.ndarray

    def __len__(self) -> int:
        return self.x.shape[0]

    def take(self, rows) -> Split:
        return Split(self.x[rows], self.y[rows])


@dataclass(frozen=True)
class Dataset:
    name: str
    task: str  # "binary" | "multiclass" | "regression"
    train: Split
    val: Split | None  # None: validate by k-fold over train
    test: Split
    class_names: tuple[str, ...]
    k_folds: int = 0

    @property
    def n_features(self) -> int:
        return self.train.x.shape[1]

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One example's shape: (features,), or an array's own (28, 28)."""
        return tuple(int(n) for n in self.train.x.shape[1:])

    @property
    def n_classes(self) -> int:
        return len(self.class_names)


@dataclass(frozen=True)
class Fitted:
    """What the features were fitted with on the training split: what an end-to-end model
    needs to read raw input the way the network was trained."""

    text: text.TextSettings | None = None  # None: a table
    vocabulary: tuple[str, ...] = ()  # as TextVectorization.get_vocabulary() returns it
    weights: np.ndarray | None = None  # per term: idf (tf_idf) or naive Bayes ratio (nb)
    table: tabular.Encoding | None = None  # tables: each raw column's encoding, in order
    replacements: tuple[tuple[str, str], ...] = ()  # made in raw texts before vectorizing
    example: np.ndarray | None = None  # arrays given from Python: two rows, taken as they are


@dataclass(frozen=True)
class DataOptions:
    """Everything that changes the features; later searches vary these."""

    text: text.TextSettings = text.TextSettings()
    with_title: bool = False  # texts with a headline (newswires): prepend it to the body
