"""Datasets of the seed notebooks, read from their original archives, and the user's own."""

from pipeline.datasets.registry import (
    SPECS,
    DataOptions,
    Dataset,
    Fitted,
    Spec,
    Split,
    dataset_name,
    describe,
    fitted_for,
    load_dataset,
    resolve,
    resolve_all,
    with_options,
)
from pipeline.datasets.text import TextSettings
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
