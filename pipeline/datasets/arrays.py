"""Arrays a user already holds (NumPy arrays, or a `tf.data.Dataset` or Keras `PyDataset`
of `(x, y)` batches), given from Python: `pipeline.search(x=..., y=...)`. They are written
once as `.npy` files into a folder named by their digest, under the data folder, so that
every worker process reads the same data from the plan's spec, as it does a declared
dataset's archive.

The splits: `validation_data=(x_val, y_val)` or the last `validation_split` of the rows
(Keras' rule, 0.2 when neither is given); `test_data=(x_test, y_test)`, else a seeded
fifth of the rows held out before, as for a CSV table. The task comes from `y`: 0/1 labels
are binary, other whole numbers from 0 classes, anything else regression."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.datasets.splits import train_test
from pipeline.datasets.types import Dataset, Split
from pipeline.errors import UserError

KIND = "arrays"
PARTS = ("train", "val", "test")
META = "arrays.json"


@dataclass(frozen=True)
class ArraySource:
    """A folder of `x_train.npy`, `y_train.npy`, ... written by `save`."""

    path: Path
    digest: str  # of every array's bytes, shapes and dtypes
    row_shape: tuple[int, ...]  # one example's
    dtype: str

    def describe(self, data_dir: Path | None = None) -> str:
        return f"arrays in {self.path}"


@dataclass(frozen=True)
class Saved:
    source: ArraySource
    task: str
    class_names: tuple[str, ...]


def save(
    folder: Path,
    *,
    x: Any,
    y: Any = None,
    validation_data: tuple | None = None,
    validation_split: float | None = None,
    test_data: tuple | None = None,
    task: str | None = None,
) -> Saved:
    """Check the arrays, split them, and write them (once per digest) into `folder`."""
    x, y = as_arrays(x, y, "x")
    if validation_data is not None and validation_split is not None:
        raise UserError("give validation_data or validation_split, not both")
    parts = _split(x, y, validation_data, validation_split, test_data)
    task = task or infer_task(np.concatenate([part[1] for part in parts.values()]))
    class_names = _classes(task, parts)
    parts = {k: (xs, _labels(ys, task)) for k, (xs, ys) in parts.items()}
    digest = _digest(parts, task)
    where = folder / digest[:16]
    if not (where / META).is_file():  # written whole, then named: a half-written one never is
        partial = folder / f".{digest[:16]}.partial"
        partial.mkdir(parents=True, exist_ok=True)
        for name, (xs, ys) in parts.items():
            np.save(partial / f"x_{name}.npy", xs)
            np.save(partial / f"y_{name}.npy", ys)
        meta = {"task": task, "class_names": list(class_names), "digest": digest}
        (partial / META).write_text(json.dumps(meta))
        if not where.exists():
            partial.replace(where)
    source = ArraySource(where, digest, tuple(int(n) for n in x.shape[1:]), str(x.dtype))
    return Saved(source, task, class_names)


def load(source: ArraySource, name: str, task: str, class_names: tuple[str, ...]) -> Dataset:
    """The splits, as written."""
    splits = {}
    for part in PARTS:
        try:
            xs, ys = (np.load(source.path / f"{axis}_{part}.npy") for axis in ("x", "y"))
        except OSError as error:
            raise UserError(f"{name}: cannot read its arrays in {source.path} ({error})") from None
        splits[part] = Split(xs, ys)
    return Dataset(name, task, splits["train"], splits["val"], splits["test"], class_names)


def example(source: ArraySource) -> np.ndarray:
    """Two test rows: what the registered model's signature shows."""
    return np.load(source.path / "x_test.npy", mmap_mode="r")[:2].copy()


def as_arrays(x: Any, y: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    """`x` and `y` as NumPy arrays with as many rows; a dataset of `(x, y)` batches (y None)
    read whole."""
    if y is None and not isinstance(x, np.ndarray):
        x, y = _batches(x, what)
    if y is None:
        raise UserError(f"{what}= needs its labels: y=, or a dataset of (x, y) batches")
    x, y = np.asarray(x), np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if x.ndim < 2 or y.ndim != 1:
        raise UserError(
            f"{what}: expected x with one row per example (2 or more dimensions) and y with "
            f"one label or value per row; got shapes {x.shape} and {y.shape}"
        )
    if len(x) != len(y):
        raise UserError(f"{what}: x has {len(x)} rows, y has {len(y)}")
    if x.dtype == object or not np.issubdtype(x.dtype, np.number):
        raise UserError(f"{what}: x must hold numbers, got dtype {x.dtype}")
    return x, y


def infer_task(y: np.ndarray) -> str:
    """binary (0/1), multiclass (whole numbers from 0, more than two) or regression."""
    if not np.issubdtype(y.dtype, np.number) or not np.all(np.isfinite(y)):
        return "regression"
    whole = np.all(np.mod(y, 1) == 0) and y.min() >= 0
    if not whole:
        return "regression"
    return "binary" if set(np.unique(y).tolist()) <= {0, 1} else "multiclass"


def _batches(data: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    """A tf.data.Dataset (`as_numpy_iterator`) or a PyDataset (indexed batches) whole."""
    if hasattr(data, "as_numpy_iterator"):
        batches = list(data.as_numpy_iterator())
    elif hasattr(data, "__getitem__") and hasattr(data, "__len__"):
        batches = [data[i] for i in range(len(data))]
    else:
        raise UserError(f"{what}: expected arrays, a tf.data.Dataset or a PyDataset")
    if not batches or not all(isinstance(b, tuple | list) and len(b) >= 2 for b in batches):
        raise UserError(f"{what}: the dataset must yield (x, y) batches")
    return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])


def _split(x, y, validation_data, validation_split, test_data) -> dict[str, tuple]:
    if test_data is not None:
        test = as_arrays(*test_data, "test_data")
    else:  # a seeded fifth, as for a table; the rest in its order (validation: the last)
        rest, held = train_test(len(y))
        rest = np.sort(rest)
        test = (x[held], y[held])
        x, y = x[rest], y[rest]
    if validation_data is not None:
        val = as_arrays(*validation_data, "validation_data")
    else:
        fraction = 0.2 if validation_split is None else float(validation_split)
        if not 0 < fraction < 1:
            raise UserError(f"validation_split must be between 0 and 1, got {fraction}")
        cut = len(y) - max(1, int(round(len(y) * fraction)))  # Keras: the last rows
        if cut < 1:
            raise UserError(f"x: {len(y)} rows are too few to split off a validation part")
        val, (x, y) = (x[cut:], y[cut:]), (x[:cut], y[:cut])
    parts = {"train": (x, y), "val": val, "test": test}
    for name, (xs, _) in parts.items():
        if xs.shape[1:] != parts["train"][0].shape[1:]:
            raise UserError(
                f"{name} rows have shape {xs.shape[1:]}, the training rows "
                f"{parts['train'][0].shape[1:]}"
            )
    return parts


def _classes(task: str, parts: dict) -> tuple[str, ...]:
    if task == "regression":
        return ()
    top = max(int(ys.max()) for _, ys in parts.values() if len(ys))
    return tuple(str(i) for i in range(max(top + 1, 2)))


def _labels(y: np.ndarray, task: str) -> np.ndarray:
    """0/1 floats for binary (as Keras' IMDB loader gives), class indices, or values."""
    if task == "binary":
        return y.astype("float32")
    if task == "multiclass":
        return y.astype("int64")
    return y.astype("float32")


def _digest(parts: dict, task: str) -> str:
    digest = hashlib.sha256(task.encode())
    for name, (xs, ys) in parts.items():
        for array in (xs, ys):
            digest.update(f"{name}{array.shape}{array.dtype}".encode())
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()
