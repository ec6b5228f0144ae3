"""Datasets: the seed notebooks' (read from their original archives), the plugins' and the
user's own. A dataset is declared once, by its own module (`Declaration`)."""

from pipeline.datasets.about import describe, fitted_for
from pipeline.datasets.archives import Archive, Bundled, Generated
from pipeline.datasets.declaration import Declaration
from pipeline.datasets.registry import (
    Spec,
    dataset_name,
    declared,
    from_arrays,
    load_dataset,
    spec_of,
    specs_of,
    with_options,
)
from pipeline.datasets.tabular import read_csv_table, table_of
from pipeline.datasets.text import TextSettings
from pipeline.datasets.types import DataOptions, Dataset, Fitted, Split
from pipeline.datasets.user import CsvOptions

__all__ = [
    "Archive",
    "Bundled",
    "CsvOptions",
    "DataOptions",
    "Dataset",
    "Declaration",
    "Fitted",
    "Generated",
    "Spec",
    "Split",
    "TextSettings",
    "dataset_name",
    "declared",
    "from_arrays",
    "describe",
    "fitted_for",
    "load_dataset",
    "read_csv_table",
    "spec_of",
    "specs_of",
    "table_of",
    "with_options",
]
