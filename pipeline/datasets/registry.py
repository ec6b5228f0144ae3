"""The datasets a name can mean: the built-in ones and the plugins' (each declared once, by
its own module) and the user's (`folder:PATH`, `csv:PATH`). `load_dataset` returns their
splits, vectorized or encoded; text features are cached."""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import logging
import pkgutil
from dataclasses import dataclass, field, replace
from pathlib import Path

from pipeline import settings as paths
from pipeline.datasets import arrays, builtin, splits, tabular, text, user
from pipeline.datasets.archives import Source
from pipeline.datasets.declaration import Declaration
from pipeline.datasets.types import DataOptions, Dataset, Split
from pipeline.errors import UserError

log = logging.getLogger("pipeline")
PLUGINS = "pipeline.datasets"  # the entry-point group through which packages add datasets


@dataclass(frozen=True)
class Spec:
    """A dataset resolved from its name: declared (built in or by a plugin) or the user's."""

    name: str
    task: str
    kind: str  # "text" | "table" | "arrays"
    source: Source | user.UserSource | arrays.ArraySource
    class_names: tuple[str, ...] = ()  # read before any vectorizing
    declaration: Declaration | None = None  # None: the user's own data
    # csv: tables, read and checked once, when resolved (a frame: not compared or hashed)
    table: tabular.Table | None = field(default=None, compare=False)

    @property
    def is_user(self) -> bool:
        return self.declaration is None

    @property
    def is_table(self) -> bool:
        """Rows of raw feature values, not texts."""
        return self.kind == "table"

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def distribution(self) -> str:
        """The "NAME==VERSION" of the plugin package that declared it ("" when built in or the
        user's): what a machine serving its model installs."""
        return "" if self.declaration is None else self.declaration.distribution

    @property
    def default_spaces(self) -> tuple[str, ...]:
        """The search spaces it uses unless told, first found first: its own (a YAML file
        of its name in search_spaces/), else the generic one of its kind."""
        return (self.kind,) if self.is_user else (self.name, self.kind)


@functools.cache
def declared() -> dict[str, Declaration]:
    """Every declared dataset by name: the modules of `builtin/`, then the plugins. A plugin
    that fails to load is one warning naming it; the other datasets still work."""
    found = {}
    for info in pkgutil.iter_modules(builtin.__path__):
        module = importlib.import_module(f"{builtin.__name__}.{info.name}")
        if isinstance(getattr(module, "DATASET", None), Declaration):
            found[module.DATASET.name] = module.DATASET
    for entry in importlib.metadata.entry_points(group=PLUGINS):
        origin = f"{entry.dist.name}=={entry.dist.version}" if entry.dist else ""
        where = origin or entry.value
        try:
            declaration = _plugin(entry)
        except Exception as error:  # a broken plugin must not take the others down
            log.warning("dataset plugin %r (%s) not loaded: %s", entry.name, where, error)
            continue
        if declaration.name in found:
            log.warning(
                "dataset plugin %r (%s) ignored: a dataset %r exists",
                entry.name,
                where,
                declaration.name,
            )
            continue
        found[declaration.name] = replace(declaration, distribution=origin)
    return found


def _plugin(entry: importlib.metadata.EntryPoint) -> Declaration:
    """An entry point names a Declaration, or a module holding one as DATASET."""
    loaded = entry.load()
    declaration = getattr(loaded, "DATASET", loaded)
    if not isinstance(declaration, Declaration):
        raise TypeError(f"{entry.value} is not a pipeline.datasets.Declaration")
    return declaration


def dataset_name(name: str, csv: user.CsvOptions | None = None) -> str:
    """The canonical name: declared names as they are, user datasets with an absolute path
    (and the CSV columns), so every command and worker refers to the same data."""
    if user.is_user(name):
        return user.parse(name, csv).name
    if csv is not None and csv.given():
        raise UserError(
            "--text-col, --label-col, --feature-cols, --task and --k-folds are for csv:PATH"
        )
    return name


def spec_of(name: str | Spec, csv: user.CsvOptions | None = None) -> Spec:
    """The dataset a user named (declared, `folder:PATH` or `csv:PATH`), checked once; a
    spec made already (arrays given from Python: `from_arrays`) as it is."""
    if isinstance(name, Spec):
        return name
    name = dataset_name(name, csv)
    if user.is_user(name):
        return _user_spec(user.parse(name))
    known = declared()
    if name not in known:
        raise UserError(
            f"unknown dataset {name!r}; known datasets: {', '.join(known)}, "
            "or folder:PATH / csv:PATH for your own texts and tables"
        )
    return _declared_spec(known[name])


def from_arrays(name: str, **given) -> Spec:
    """Arrays given from Python (`arrays.save`'s arguments: x, y, validation_data, ...),
    written under the data folder, as a dataset called `name`."""
    if name in declared() or user.is_user(name):
        raise UserError(f"{name!r} names a dataset already; call your arrays another name")
    saved = arrays.save(paths.data_dir() / "arrays", **given)
    return Spec(name, saved.task, arrays.KIND, saved.source, saved.class_names)


def specs_of(names: list[str] | None, csv: user.CsvOptions | None = None) -> list[Spec]:
    """The named datasets (the CSV options apply to the csv: ones), or every declared one."""
    if not names:
        return [_declared_spec(d) for d in declared().values()]
    return [spec_of(n, csv) if n.startswith("csv:") else spec_of(n) for n in names]


def _declared_spec(d: Declaration) -> Spec:
    return Spec(
        name=d.name,
        task=d.task,
        kind=d.kind,
        source=d.source,
        class_names=d.class_names,
        declaration=d,
    )


def _user_spec(source: user.UserSource) -> Spec:
    """Classes are listed before anything is read: two make a binary task, more multiclass.
    A table is read and checked here, once: its task comes from its label column."""
    if source.is_table:
        table = tabular.read_csv_table(
            source.path,
            source.label_col,
            feature_cols=source.feature_cols,
            task=source.task,
            warn=True,
        )
        return Spec(source.name, table.task, "table", source, table.class_names, table=table)
    if source.kind == "folder":
        names = tuple(user.folder_classes(source.path)[0])
    else:
        names = tuple(user.csv_classes(source))
    task = "binary" if len(names) == 2 else "multiclass"
    return Spec(source.name, task, "text", source, names)


# --- loading --------------------------------------------------------------------------------


def load_dataset(dataset: Spec | str, options: DataOptions | None = None) -> Dataset:
    """Read (or download) the data, split it, vectorize (cached) or encode it."""
    spec = dataset if isinstance(dataset, Spec) else spec_of(dataset)
    options = options or DataOptions()
    if spec.kind == arrays.KIND:
        return arrays.load(spec.source, spec.name, spec.task, spec.class_names)
    data_dir = paths.data_dir()
    where = location(spec, data_dir)
    if spec.is_table:
        return _table_dataset(spec, where)
    s = _cached_text(spec, where, data_dir, options)
    if spec.task == "binary":  # float 0/1 labels, as Keras' IMDB loader gives
        s = {k: Split(v.x, v.y.astype("float32")) for k, v in s.items()}
    return Dataset(
        name=spec.name,
        task=spec.task,
        train=s["train"],
        val=s["val"],
        test=s["test"],
        class_names=spec.class_names,
    )


def location(spec: Spec, data_dir: Path) -> Path:
    """Where a dataset's data is: the user's path; a declared source found, or absent with
    its cache standing in for it, or downloaded (or made)."""
    if spec.is_user:
        return spec.source.path
    found = spec.source.local(data_dir)
    if found is None and text.stands_in(data_dir, spec.source.fname):
        return data_dir / spec.source.fname  # absent: its cache stands in for it
    return found or spec.source.obtain(data_dir)


def _table_dataset(spec: Spec, where: Path) -> Dataset:
    """A table split as Keras splits Boston housing (a seeded fifth for test), then a
    held-out fifth of train for validation unless k-fold; encoded as fitted on train only."""
    table = spec_table(spec, where)
    (train, val, test), k_folds = table_rows(spec, table, where)
    x = table.fit(train).transform(table.features)
    y = table.targets()
    parts = [None if rows is None else Split(x[rows], y[rows]) for rows in (train, val, test)]
    return Dataset(spec.name, table.task, *parts, table.class_names, k_folds=k_folds)


def spec_table(spec: Spec, where: Path) -> tabular.Table:
    return spec.table if spec.table is not None else spec.declaration.table(where)


def table_rows(spec: Spec, table: tabular.Table, where: Path):
    """A table's (train, validation or None, test) rows and its number of folds."""
    k_folds = spec.source.k_folds if spec.is_user else spec.declaration.k_folds
    return splits.table_rows(len(table.labels), k_folds, where)


def _cached_text(spec: Spec, where: Path, data_dir: Path, options: DataOptions) -> dict:
    path = cache_file(spec, where, data_dir, options)
    cached = text.load_splits(path)
    if cached is None and not where.exists():
        raise UserError(
            f"{spec.name}: {where} is not there, and its cache holds no data for {options}; "
            "put the archive back (vectorizing raw text needs it, and TensorFlow)"
        )
    if cached is None:
        log.info("vectorizing %s with %s: once per setting, then cached", spec.name, options)
        raw = read_texts(spec, where, options)
        keys = ["train", *(k for k in raw if k != "train")]  # the vocabulary: train only
        texts = [raw[k][0] for k in keys]
        try:
            matrices, fitted = text.vectorize(options.text, *texts, labels=raw["train"][1])
        except text.NoWords as error:  # a folder of empty .txt files, a column of blanks
            raise UserError(
                f"{spec.name}: {error} (are its files empty?); give it texts with words"
            ) from None
        cached = {k: (m, raw[k][1]) for k, m in zip(keys, matrices, strict=True)}
        if text.save_splits(path, cached):  # an unwritable cache: one warning, not two
            text.save_fitted(path, fitted)
    return {key: Split(x, y) for key, (x, y) in cached.items()}


def read_texts(spec: Spec, where: Path, options: DataOptions) -> dict[str, splits.Texts]:
    """Raw train, validation and test texts: the declaration's split with its replacements
    made, or the user's texts split by seed."""
    if spec.is_user:
        read = user.read_folder if spec.source.kind == "folder" else user.read_csv
        return splits.seeded_texts(read(spec.source)[1])
    parts = spec.declaration.texts(where, options)
    changes = spec.declaration.replacements
    return {k: (text.replace_all(texts, changes), y) for k, (texts, y) in parts.items()}


def cache_file(spec: Spec, where: Path, data_dir: Path, options: DataOptions) -> Path:
    """The cache of a text dataset's vectors: named by everything that changes them."""
    prefix = spec.name
    if spec.is_user:
        extra = {"name": spec.name, "files": user.fingerprint(spec.source)}
        prefix = f"{spec.source.kind}-{spec.source.path.stem}"
    else:
        extra = {key: getattr(options, key) for key in spec.declaration.options}
    if options.text.encoder and Path(options.text.encoder).is_dir():
        extra["encoder_files"] = text.fingerprint(Path(options.text.encoder).rglob("*"))
    return text.cache_path(data_dir, prefix, where, **text.settings_key(options.text), **extra)


def with_options(options: DataOptions, **changes) -> DataOptions:
    """`options` with some fields changed: max_tokens, ngrams, output_mode, with_title."""
    text_keys = {"max_tokens", "ngrams", "output_mode", "sequence_length", "encoder"}
    text_changes = {k: v for k, v in changes.items() if k in text_keys}
    other = {k: v for k, v in changes.items() if k not in text_keys}
    return replace(options, text=replace(options.text, **text_changes), **other)
