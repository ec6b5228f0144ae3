"""Datasets of the seed notebooks, read from their original archives, and the user's own."""

from pipeline.datasets.about import describe, fitted_for
from pipeline.datasets.registry import (
    SPECS,
    Spec,
    dataset_name,
    load_dataset,
    resolve,
    resolve_all,
    with_options,
)
from pipeline.datasets.text import TextSettings
from pipeline.datasets.types import DataOptions, Dataset, Fitted, Split
from pipeline.datasets.user import CsvOptions

__all__ = [
    "SPECS",
    "CsvOptions",
    "Spec",
    "DataOptions",
    "Dataset",
    "Fitted",
    "Split",
    "TextSettings",
    "dataset_name",
    "fitted_for",
    "describe",
    "load_dataset",
    "resolve",
    "resolve_all",
    "with_options",
]
