"""Tables the user brings (`csv:PATH --label-col COL`, no text column): every other column
(or `--feature-cols`) is a feature. Numbers are filled with the training split's median and
standardized with its mean and standard deviation; a column of a few distinct strings is
one-hot encoded from the training split's categories. The encoding is plain values (JSON),
shared by training and the end-to-end model, so both read raw rows the same way."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipeline.errors import UserError

log = logging.getLogger("pipeline")
MISSING = ("", "na", "n/a", "nan", "null", "none", "?")  # read as a missing value (any case)
MISSING_CATEGORY = "(missing)"  # a string column's missing values: a category of their own
MIN_ROWS = 20
MAX_CATEGORIES = 50  # more distinct strings than this: not a categorical feature
MAX_CLASS_VALUES = 10  # integer labels with at most this many values: classes, not amounts
FREE_TEXT_WORDS = 4  # strings averaging this many words are prose, not categories
TASKS = ("regression", "binary", "multiclass")


@dataclass(frozen=True)
class Column:
    """One raw column and how it becomes features."""

    name: str
    kind: str  # "numeric" | "categorical"
    fill: float = 0.0  # numeric: the training median, for missing values
    mean: float = 0.0
    std: float = 1.0
    categories: tuple[str, ...] = ()  # categorical: one feature each, in this order

    def describe(self) -> str:
        if self.kind == "numeric":
            return f"numeric: (x - {self.mean:.4g}) / {self.std:.4g}, missing -> {self.fill:.4g}"
        return f"one-hot over {len(self.categories)}: {', '.join(self.categories)}"


@dataclass(frozen=True)
class Encoding:
    """The fitted encoding of a table's feature columns."""

    columns: tuple[Column, ...]

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Raw rows (strings or numbers; missing values allowed) as float32 features."""
        absent = [c.name for c in self.columns if c.name not in frame.columns]
        if absent:
            raise ValueError(f"missing feature columns: {', '.join(absent)}")
        parts = []
        for column in self.columns:
            raw = _strings(frame[column.name])
            if column.kind == "numeric":
                values = as_numbers(raw, column.name).fillna(column.fill).to_numpy("float64")
                parts.append(((values - column.mean) / column.std)[:, None])
            else:
                raw = raw.where(~_missing(raw), MISSING_CATEGORY)
                parts.append(np.stack([raw == c for c in column.categories], axis=1))
        return np.concatenate(parts, axis=1).astype("float32")

    def example(self) -> pd.DataFrame:
        """Two raw rows: the training means (and a standard deviation more), first categories."""
        rows = {}
        for c in self.columns:
            rows[c.name] = (
                [c.mean, c.mean + c.std] if c.kind == "numeric" else [c.categories[0]] * 2
            )
        return pd.DataFrame(rows)

    def to_json(self) -> list[dict]:
        return [asdict(c) for c in self.columns]

    @classmethod
    def from_json(cls, raw: list[dict]) -> Encoding:
        return cls(tuple(Column(**{**c, "categories": tuple(c["categories"])}) for c in raw))


# --- reading and checking a CSV table -------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """A CSV table read and checked: its raw features, labels, task and kinds of columns."""

    features: pd.DataFrame  # raw strings
    labels: pd.Series  # raw strings, none missing
    task: str
    class_names: tuple[str, ...]  # classification: the sorted distinct labels
    kinds: dict[str, str]  # feature column -> "numeric" | "categorical"

    def targets(self, rows=None) -> np.ndarray:
        """Labels as the network learns them: values, 0/1, or class indices."""
        labels = self.labels if rows is None else self.labels.iloc[rows]
        if self.task == "regression":
            return as_numbers(labels, "label").to_numpy("float32")
        index = {name: i for i, name in enumerate(self.class_names)}
        y = np.array([index[v] for v in labels])
        return y.astype("float32") if self.task == "binary" else y

    def fit(self, rows) -> Encoding:
        """The encoding of the feature columns, fitted on `rows` (the training split)."""
        train = self.features.iloc[rows]
        numeric = [name for name, kind in self.kinds.items() if kind == "numeric"]
        fill, mean, std = _numeric_statistics(train, numeric)
        stats = {name: (fill[i], mean[i], std[i]) for i, name in enumerate(numeric)}
        columns = []
        for name, kind in self.kinds.items():
            if kind == "numeric":
                fill, mean, std = (float(v) for v in stats[name])
                columns.append(Column(name, kind, fill, mean, std or 1.0))
            else:
                raw = train[name]
                filled = raw.where(~_missing(raw), MISSING_CATEGORY)
                columns.append(Column(name, kind, categories=tuple(sorted(set(filled)))))
        return Encoding(tuple(columns))


def _numeric_statistics(train: pd.DataFrame, names: list[str]):
    """Per column: the median (for missing values), then the mean and standard deviation
    of the filled values, in float32 over a rows x columns matrix: the network's precision,
    and Boston housing's statistics since the seed notebooks, kept to 1e-6
    (tests/fixtures/boston_housing_v1.npz)."""
    if not names:
        return [], [], []
    matrix = np.column_stack([as_numbers(train[n], n).to_numpy() for n in names])
    present = ~np.isnan(matrix)
    fill = np.array(
        [np.median(c[p]) if p.any() else 0.0 for c, p in zip(matrix.T, present.T, strict=True)]
    )
    values = np.where(present, matrix, fill)
    with np.errstate(over="ignore", invalid="ignore"):
        as32 = values.astype("float32")
        mean, std = as32.mean(axis=0).astype("float64"), as32.std(axis=0).astype("float64")
    wide = ~(np.isfinite(mean) & np.isfinite(std))  # sums beyond float32: in float64
    mean[wide], std[wide] = values[:, wide].mean(axis=0), values[:, wide].std(axis=0)
    return fill, mean, std


def read_csv_table(path, label_col: str, **checks: Any) -> Table:
    """Read and check a CSV table: every problem is one UserError naming the column;
    `checks`: `table_of`'s feature_cols, task and warn."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        first = str(error).strip().splitlines()[0]
        raise UserError(f"{path}: not a readable CSV file ({first})") from None
    return table_of(frame, path, label_col, **checks)


def table_of(
    frame: pd.DataFrame,
    path,
    label_col: str,
    feature_cols: tuple[str, ...] = (),
    task: str | None = None,
    warn: bool = False,
) -> Table:
    """Check a frame of raw strings read from `path` (named in errors): every problem is one
    UserError naming the column; `warn`: one warning line each for dropped rows and missing
    values (when first read)."""
    frame = frame.apply(lambda column: column.str.strip())
    names = list(feature_cols) or [c for c in frame.columns if c != label_col]
    if not names:
        raise UserError(f"{path}: no feature columns besides the label {label_col!r}")
    for name in [label_col, *names]:
        if name not in frame.columns:
            raise UserError(
                f"{path}: no column {name!r}; columns are {', '.join(frame.columns)} "
                "(choose with --label-col and --feature-cols)"
            )
    if label_col in names:
        raise UserError(f"{path}: the label column {label_col!r} cannot also be a feature")
    labelled = ~_missing(frame[label_col])
    if not labelled.all() and warn:
        log.warning("%s: dropping %d rows without a label", path, (~labelled).sum())
        frame = frame[labelled].reset_index(drop=True)
    if len(frame) < MIN_ROWS:
        raise UserError(f"{path}: {len(frame)} labelled rows; a table needs at least {MIN_ROWS}")
    labels = frame[label_col]
    task = task or infer_task(labels)
    class_names = _classes(path, label_col, labels, task)
    kinds = {name: _kind(path, name, frame[name]) for name in names}
    numeric = [n for n in names if kinds[n] == "numeric"]
    for name in numeric + ([label_col] if task == "regression" else []):
        _check_range(path, name, frame[name])
    missing = int(sum(_missing(frame[n]).sum() for n in names))
    if missing and warn:
        log.warning(
            "%s: %d missing feature values (numbers: the training median; strings: a "
            "category of their own)",
            path,
            missing,
        )
    return Table(frame[names], labels, task, class_names, kinds)


def infer_task(labels: pd.Series) -> str:
    """Numbers with many distinct values: regression; strings or a few integers: classes."""
    numbers = pd.to_numeric(labels, errors="coerce")
    distinct = labels.nunique()
    if numbers.notna().all():
        integers = bool((numbers == numbers.round()).all())
        if not (integers and distinct <= MAX_CLASS_VALUES):
            return "regression"
    return "binary" if distinct == 2 else "multiclass"


def _classes(path, label_col: str, labels: pd.Series, task: str) -> tuple[str, ...]:
    distinct = labels.unique()
    if len(distinct) < 2:
        raise UserError(
            f"{path}: label column {label_col!r} is constant ({distinct[0]!r}); nothing to learn"
        )
    if task == "regression":
        if pd.to_numeric(labels, errors="coerce").isna().any():
            raise UserError(f"{path}: --task regression needs numbers in {label_col!r}")
        return ()
    numbers = pd.to_numeric(pd.Series(distinct), errors="coerce")
    key = (lambda v: float(v)) if numbers.notna().all() else str  # 2 before 10
    names = tuple(sorted(distinct, key=key))
    expected = 2 if task == "binary" else 3
    if (task == "binary") != (len(names) == 2) or len(names) < expected:
        raise UserError(
            f"{path}: --task {task} does not fit {len(names)} distinct labels in {label_col!r}"
        )
    return names


def _kind(path, name: str, column: pd.Series) -> str:
    present = column[~_missing(column)]
    if present.empty:
        raise UserError(f"{path}: feature column {name!r} is empty; leave it out (--feature-cols)")
    if pd.to_numeric(present, errors="coerce").notna().all():
        return "numeric"
    distinct = present.nunique()
    if present.str.split().str.len().mean() >= FREE_TEXT_WORDS:
        raise UserError(
            f"{path}: column {name!r} holds free text; search it as a text dataset with "
            f"--text-col {name}, or leave it out with --feature-cols"
        )
    if distinct == len(present) and distinct > MAX_CLASS_VALUES:
        raise UserError(
            f"{path}: column {name!r} looks like an identifier (all {distinct} values "
            "distinct); leave it out with --feature-cols"
        )
    if distinct > MAX_CATEGORIES:
        raise UserError(
            f"{path}: column {name!r} has {distinct} distinct strings (at most "
            f"{MAX_CATEGORIES} are one-hot encoded); leave it out with --feature-cols"
        )
    return "categorical"


FLOAT32_MAX = float(np.finfo(np.float32).max)  # the network computes in float32


def _check_range(path, name: str, column: pd.Series) -> None:
    """Numbers the network can hold: finite, within float32's range (inf and 1e39 are not)."""
    values = as_numbers(column, name)
    bad = values.notna() & ~(values.abs() <= FLOAT32_MAX)
    if bad.any():
        raise UserError(
            f"{path}: column {name!r}: {column[bad].iloc[0]!r} is not a finite number "
            f"within float32's range (±{FLOAT32_MAX:.3g})"
        )


def _strings(column: pd.Series) -> pd.Series:
    return column.astype(str).str.strip()


def _missing(column: pd.Series) -> pd.Series:
    return column.isna() | _strings(column).str.lower().isin(MISSING)


def as_numbers(column: pd.Series, name: str) -> pd.Series:
    """A column of numbers written any way ("127", "127.0", " 1e3"), missing values as NaN;
    a ValueError names the column and the first value that is no number."""
    values = pd.to_numeric(column.where(~_missing(column)), errors="coerce")
    bad = values.isna() & ~_missing(column)
    if bad.any():
        raise ValueError(f"column {name!r}: {column[bad].iloc[0]!r} is not a number")
    return values.astype("float64")
