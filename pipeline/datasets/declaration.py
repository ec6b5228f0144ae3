"""What a dataset module declares: everything the project knows about one dataset, written
once. A built-in dataset is a module of `pipeline/datasets/builtin/` holding `DATASET`; a
plugin is an installed package whose `pipeline.datasets` entry point names its own."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline.datasets import tabular
from pipeline.datasets.archives import Source
from pipeline.datasets.splits import Texts
from pipeline.datasets.types import DataOptions

NAME = re.compile(r"[a-z][a-z0-9_]*")  # names never clash with folder:PATH or csv:PATH


@dataclass(frozen=True)
class Declaration:
    """One dataset. Give `texts` (a text dataset) or `table` (rows of feature values), as
    module-level functions: worker processes and cluster nodes import them by name.

    `texts(location, options)` is called with:

    - `location`: a `pathlib.Path`, where `source` put the data on this machine: the
      archive file in `PIPELINE_DATA_DIR` (or that folder, when it holds the archive
      unpacked), the bundled file, or the generated one;
    - `options`: a `pipeline.datasets.DataOptions`, the representation a trial asks for
      (`options.text`: max_tokens, ngrams, output_mode; `options.with_title`). Only the
      fields named in `options=` change what `texts` should read; the vectorization
      itself is done for you.

    It returns `{"train": (texts, labels), "val": ..., "test": ...}`, each a list of raw
    strings and a NumPy array of labels (class indices); `pipeline.datasets.splits` has
    seeded helpers to split them.

    `table(location)` returns a `pipeline.datasets.tabular.Table` of the raw rows, split,
    encoded and fitted as `csv:` tables are."""

    name: str
    task: str  # "binary" | "multiclass" | "regression"
    source: Source  # an Archive to download, a Bundled file, or a Generated one
    # texts(location, options) -> {"train", "val", "test": (texts, labels)}: its own split
    texts: Callable[[Path, DataOptions], dict[str, Texts]] | None = None
    # table(location) -> tabular.Table: split, encoded and fitted as csv: tables are
    table: Callable[[Path], tabular.Table] | None = None
    class_names: tuple[str, ...] = ()
    sizes: tuple[int | None, int | None, int | None] = (None, None, None)  # listed before
    n_features: int | None = None  # download: official train/validation/test rows, features
    replacements: tuple[tuple[str, str], ...] = ()  # raw text, when read and when predicting
    options: tuple[str, ...] = ()  # DataOptions fields that change what `texts` reads
    k_folds: int | None = None  # tables: None = k-fold below 2,000 training rows
    distribution: str = ""  # "NAME==VERSION" of the plugin that brought it (set on loading)

    def __post_init__(self) -> None:
        problems = []
        if not NAME.fullmatch(self.name):
            problems.append(f"name {self.name!r} is not lower_case_with_underscores")
        if self.task not in tabular.TASKS:
            problems.append(f"task {self.task!r} is not one of {', '.join(tabular.TASKS)}")
        if (self.texts is None) == (self.table is None):
            problems.append("give either texts= or table=")
        if self.texts is not None and self.task != "regression" and len(self.class_names) < 2:
            problems.append("a text dataset lists its class_names")
        unknown = set(self.options) - set(DataOptions.__dataclass_fields__)
        if unknown:
            problems.append(f"options {sorted(unknown)} are not DataOptions fields")
        if problems:
            raise ValueError(f"dataset {self.name!r}: {'; '.join(problems)}")

    @property
    def kind(self) -> str:
        return "text" if self.texts is not None else "table"
