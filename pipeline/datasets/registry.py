"""The known datasets: one call each returns train / validation / test splits plus metadata."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from pipeline import settings as paths
from pipeline.datasets import boston, imdb, reuters, tabular, text, user
from pipeline.datasets.archives import Source, fetch
from pipeline.datasets.types import DataOptions, Dataset, Split
from pipeline.errors import UserError

log = logging.getLogger("pipeline")
SHUFFLE_SEED = 113  # the seed Keras' imdb / reuters / boston_housing loaders shuffle with
TEST_FRACTION = 0.2


@dataclass(frozen=True)
class Spec:
    name: str
    task: str
    source: Source | user.UserSource
    sizes: tuple[int, int | None, int]  # train / validation / test of the official data
    n_features: int
    n_classes: int
    build: Callable[[Path, Path, DataOptions], Dataset]
    class_names: tuple[str, ...] = ()  # user datasets: read before any vectorizing
    # csv: tables, read and checked once, when resolved (a frame: not compared or hashed)
    table: tabular.Table | None = field(default=None, compare=False)

    @property
    def is_user(self) -> bool:
        return isinstance(self.source, user.UserSource)

    @property
    def is_table(self) -> bool:
        """Rows of raw feature values (boston_housing, a csv: table), not texts."""
        return self.name == "boston_housing" or self.table is not None

    @property
    def default_space(self) -> str:
        """The search space a dataset uses unless told: its own, or the generic text or
        table one."""
        if not self.is_user:
            return self.name
        return "text" if self.table is None else "table"


def shuffled(n: int) -> np.ndarray:
    return np.random.RandomState(SHUFFLE_SEED).permutation(n)


def cache_file(name: str, location: Path, data_dir: Path, options: DataOptions) -> Path:
    extra = {"with_title": options.with_title} if name == "reuters" else {}
    prefix = name
    if user.is_user(name):
        source = user.parse(name)
        extra = {"name": name, "files": user.fingerprint(source)}
        prefix = f"{source.kind}-{source.path.stem}"
    if options.text.encoder and Path(options.text.encoder).is_dir():
        extra["encoder_files"] = text.fingerprint(Path(options.text.encoder).rglob("*"))
    return text.cache_path(data_dir, prefix, location, **text.settings_key(options.text), **extra)


def _cached_text(name, location, data_dir, options, make_splits) -> dict:
    path = cache_file(name, location, data_dir, options)
    splits = text.load_splits(path)
    if splits is None and not location.exists():
        raise UserError(
            f"{name}: {location} is not there, and its cache holds no data for {options}; "
            "put the archive back (vectorizing raw text needs it, and TensorFlow)"
        )
    if splits is None:
        log.info("vectorizing %s with %s: once per setting, then cached", name, options)
        raw = make_splits()
        keys = ["train", *(k for k in raw if k != "train")]  # the vocabulary: train only
        texts = [raw[k][0] for k in keys]
        matrices, fitted = text.vectorize(options.text, *texts, labels=raw["train"][1])
        splits = {k: (m, raw[k][1]) for k, m in zip(keys, matrices, strict=True)}
        if text.save_splits(path, splits):  # an unwritable cache: one warning, not two
            text.save_fitted(path, fitted)
    return {key: Split(x, y) for key, (x, y) in splits.items()}


def _build_imdb(location: Path, data_dir: Path, options: DataOptions) -> Dataset:
    def make_splits():
        reviews = imdb.read_reviews(location)
        texts, labels = reviews["train"]
        order = shuffled(len(texts))
        n_val = min(10_000, len(texts) * 2 // 5)
        train, val = order[n_val:], order[:n_val]
        return {
            "train": ([texts[i] for i in train], labels[train]),
            "val": ([texts[i] for i in val], labels[val]),
            "test": reviews["test"],
        }

    s = _cached_text("imdb", location, data_dir, options, make_splits)
    return Dataset("imdb", "binary", s["train"], s["val"], s["test"], imdb.CLASS_NAMES)


def _build_reuters(location: Path, data_dir: Path, options: DataOptions) -> Dataset:
    def make_splits():
        texts, labels = reuters.read_newswires(location, options.with_title)
        order = shuffled(len(texts))
        n_train = int(len(texts) * (1 - TEST_FRACTION))
        n_val = min(1_000, n_train // 8)
        parts = {"val": order[:n_val], "train": order[n_val:n_train], "test": order[n_train:]}
        return {key: ([texts[i] for i in rows], labels[rows]) for key, rows in parts.items()}

    s = _cached_text("reuters", location, data_dir, options, make_splits)
    names = tuple(reuters.TOPICS)
    return Dataset("reuters", "multiclass", s["train"], s["val"], s["test"], names)


def _build_boston(location: Path, data_dir: Path, options: DataOptions) -> Dataset:
    x, y = boston.read_rows(location)
    train, test = boston_rows(len(x))
    x_train, x_test = boston.standardize(x[train], x[test])
    return Dataset(
        "boston_housing",
        "regression",
        Split(x_train, y[train]),
        None,
        Split(x_test, y[test]),
        (),
        k_folds=options.k_folds,
    )


def boston_rows(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Training and test rows, as Keras' boston_housing loader splits them."""
    order = shuffled(n)
    n_train = int(n * (1 - TEST_FRACTION))
    return order[:n_train], order[n_train:]


SPECS = {
    spec.name: spec
    for spec in (
        Spec("imdb", "binary", imdb.SOURCE, (15_000, 10_000, 25_000), 10_000, 2, _build_imdb),
        Spec(
            "reuters",
            "multiclass",
            reuters.SOURCE,
            (7_982, 1_000, 2_246),
            10_000,
            46,
            _build_reuters,
        ),
        Spec("boston_housing", "regression", boston.SOURCE, (404, None, 102), 13, 0, _build_boston),
    )
}


def _split_user(parts: dict[str, user.Texts]) -> dict[str, user.Texts]:
    """Seeded splits: validation is a fifth of train; without a test/ folder, test is a
    fifth of all and validation a fifth of the rest."""
    texts, labels = parts.get("train", parts.get("all"))
    order = shuffled(len(texts))
    n_test = 0 if "test" in parts else int(len(texts) * TEST_FRACTION)
    n_val = int((len(texts) - n_test) * TEST_FRACTION)
    rows = {"test": order[:n_test], "val": order[n_test : n_test + n_val]}
    rows["train"] = order[n_test + n_val :]
    out = {key: ([texts[i] for i in r], labels[r]) for key, r in rows.items()}
    if "test" in parts:
        out["test"] = parts["test"]
    if min(len(y) for _, y in out.values()) == 0:
        raise UserError(f"too few texts ({len(texts)}) for train, validation and test splits")
    return out


def _build_user(
    source: user.UserSource, names: tuple[str, ...], location: Path, data_dir: Path, options
) -> Dataset:
    def make_splits():
        read = user.read_folder if source.kind == "folder" else user.read_csv
        return _split_user(read(source)[1])

    s = _cached_text(source.name, location, data_dir, options, make_splits)
    task = _task_of(names)
    if task == "binary":  # float 0/1 labels, as IMDB's
        s = {k: Split(v.x, v.y.astype("float32")) for k, v in s.items()}
    return Dataset(source.name, task, s["train"], s["val"], s["test"], names)


def _build_table(
    source: user.UserSource, table: tabular.Table, location: Path, data_dir: Path, options
) -> Dataset:
    """A CSV table split as boston_housing is (a seeded fifth for test), then a held-out
    fifth of train for validation unless k-fold; the encoding is fitted on train only."""
    (train, val, test), k_folds = table_rows(source, table)
    encoding = table.fit(train)
    x = encoding.transform(table.features)
    y = table.targets()
    splits = [None if rows is None else Split(x[rows], y[rows]) for rows in (train, val, test)]
    return Dataset(source.name, table.task, *splits, table.class_names, k_folds=k_folds)


K_FOLD_BELOW = 2_000  # training rows under which a table validates by k-fold by default


def table_rows(source: user.UserSource, table: tabular.Table):
    """A table's (train, validation or None, test) rows and its number of folds."""
    train, test = boston_rows(len(table.labels))
    k_folds = source.k_folds
    if k_folds is None:
        k_folds = DataOptions().k_folds if len(train) < K_FOLD_BELOW else 0
    if k_folds > len(train) // 2:
        raise UserError(
            f"{source.path}: {len(train)} training rows are too few for {k_folds} folds"
        )
    if k_folds:
        return (train, None, test), k_folds
    n_val = int(len(train) * TEST_FRACTION)
    return (train[n_val:], train[:n_val], test), 0


def _task_of(class_names: tuple[str, ...]) -> str:
    return "binary" if len(class_names) == 2 else "multiclass"


def _user_spec(source: user.UserSource) -> Spec:
    """Classes are listed before anything is read: two make a binary task, more multiclass.
    A table is read and checked here, once: its task comes from its label column."""
    if source.is_table:
        table = tabular.read_table(
            source.path, source.label_col, source.feature_cols, source.task, warn=True
        )
        names = table.class_names
        build = functools.partial(_build_table, source, table)
        sizes = (None, None, None)
        return Spec(source.name, table.task, source, sizes, 0, len(names), build, names, table)
    if source.kind == "folder":
        names = tuple(user.folder_classes(source.path)[0])
    else:
        names = tuple(user.csv_classes(source))
    build = functools.partial(_build_user, source, names)
    return Spec(
        source.name, _task_of(names), source, (None, None, None), 0, len(names), build, names
    )


def dataset_name(name: str, csv: user.CsvOptions | None = None) -> str:
    """The canonical name: built-in names as they are, user datasets with an absolute path
    (and the CSV columns), so every command and worker refers to the same data."""
    if user.is_user(name):
        return user.parse(name, csv).name
    if csv is not None and csv.given():
        raise UserError(
            "--text-col, --label-col, --feature-cols, --task and --k-folds are for csv:PATH"
        )
    return name


def resolve(name: str, csv: user.CsvOptions | None = None) -> Spec:
    """The dataset a user named (built-in, `folder:PATH` or `csv:PATH`), checked once."""
    name = dataset_name(name, csv)
    if user.is_user(name):
        return _user_spec(user.parse(name))
    if name not in SPECS:
        raise UserError(
            f"unknown dataset {name!r}; known datasets: {', '.join(SPECS)}, "
            "or folder:PATH / csv:PATH for your own texts"
        )
    return SPECS[name]


def resolve_all(names: list[str] | None, csv: user.CsvOptions | None = None) -> list[Spec]:
    """The named datasets (the CSV options apply to the csv: ones), or every built-in one."""
    if not names:
        return list(SPECS.values())
    return [resolve(n, csv) if n.startswith("csv:") else resolve(n) for n in names]


def load_dataset(dataset: Spec | str, options: DataOptions | None = None) -> Dataset:
    """Read (or download) the archive, split as the seed notebooks do, vectorize, cache."""
    spec = dataset if isinstance(dataset, Spec) else resolve(dataset)
    options = options or DataOptions()
    data_dir = paths.data_dir()
    if spec.is_user:
        return spec.build(spec.source.path, data_dir, options)
    return spec.build(archive(spec, data_dir), data_dir, options)


def archive(spec: Spec, data_dir: Path) -> Path:
    """A built-in dataset's archive: found, or absent with its cache standing in for it, or
    downloaded."""
    location = spec.source.local(data_dir)
    if location is None and text.stands_in(data_dir, spec.source.fname):
        location = data_dir / spec.source.fname  # absent: its cache stands in for it
    return location or fetch(spec.source, data_dir)


def with_options(options: DataOptions, **changes) -> DataOptions:
    """`options` with some fields changed: max_tokens, ngrams, output_mode, with_title."""
    text_keys = {"max_tokens", "ngrams", "output_mode", "sequence_length", "encoder"}
    text_changes = {k: v for k, v in changes.items() if k in text_keys}
    other = {k: v for k, v in changes.items() if k not in text_keys}
    return replace(options, text=replace(options.text, **text_changes), **other)
