"""Datasets of the seed notebooks, read from their original archives."""

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

__all__ = [
    "SPECS",
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
