"""Boston housing (Harrison & Rubinfeld 1978) from the UCI `housing.data` file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.datasets.archives import Source
from pipeline.errors import UserError

SOURCE = Source(
    fname="housing.data",
    origin="https://archive.ics.uci.edu/ml/machine-learning-databases/housing/housing.data",
)
COLUMNS = (
    "CRIM",
    "ZN",
    "INDUS",
    "CHAS",
    "NOX",
    "RM",
    "AGE",
    "DIS",
    "RAD",
    "TAX",
    "PTRATIO",
    "B",
    "LSTAT",
    "MEDV",
)


def read_rows(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The 13 features and the MEDV target, in file order."""
    try:
        table = np.loadtxt(path, dtype="float64", ndmin=2)
    except ValueError as error:
        raise UserError(f"{path}: not a housing.data table ({error})") from None
    if table.shape[1] != len(COLUMNS) or len(table) < 10:
        raise UserError(
            f"{path}: {table.shape[0]} rows x {table.shape[1]} columns; "
            f"expected rows of {len(COLUMNS)} numbers ({' '.join(COLUMNS)})"
        )
    return table[:, :-1].astype("float32"), table[:, -1].astype("float32")


def standardize(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Scale by the training mean and std (seed 004 subtracted the std instead of dividing)."""
    mean, std = standardization(train)
    return [(x - mean) / std for x in (train, *others)]


def standardization(train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The training split's mean and standard deviation per column (1 where constant)."""
    mean, std = train.mean(axis=0), train.std(axis=0)
    std[std == 0] = 1.0
    return mean, std
