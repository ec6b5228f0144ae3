"""Boston housing (Harrison & Rubinfeld 1978) from the UCI `housing.data` file: 13 numbers
per district and the median home value (MEDV, in $1000s) to predict. A table: split, fitted
and encoded as a `csv:` table is (404 training rows validated by 4-fold, 102 test rows, each
column standardized by the training rows). `DATASET`, at the end, declares it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.datasets import tabular
from pipeline.datasets.archives import Archive
from pipeline.datasets.declaration import Declaration
from pipeline.errors import UserError

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


def read_housing_data(path: Path) -> tabular.Table:
    """The 13 feature columns and the MEDV label, in file order (numbers separated by
    spaces, no header)."""
    try:
        frame = pd.read_csv(path, sep=r"\s+", header=None, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        first = str(error).strip().splitlines()[0]
        raise UserError(f"{path}: not a housing.data table ({first})") from None
    numbers = frame.apply(pd.to_numeric, errors="coerce")
    if frame.shape[1] != len(COLUMNS) or len(frame) < 10 or numbers.isna().any(axis=None):
        raise UserError(
            f"{path}: {frame.shape[0]} rows x {frame.shape[1]} columns; "
            f"expected rows of {len(COLUMNS)} numbers ({' '.join(COLUMNS)})"
        )
    frame.columns = COLUMNS
    return tabular.table_of(frame, path, label_col="MEDV", task="regression")


UCI = "https://archive.ics.uci.edu/ml/machine-learning-databases"
DATASET = Declaration(
    name="boston_housing",
    task="regression",
    source=Archive("housing.data", f"{UCI}/housing/housing.data"),
    table=read_housing_data,
    sizes=(404, None, 102),
    n_features=13,
)
