"""Datasets of the seed notebooks, read from their original archives."""

from pipeline.datasets.registry import (
    SPECS,
    DataOptions,
    Dataset,
    Split,
    dataset_name,
    describe,
    get_spec,
    load_dataset,
    with_options,
)
from pipeline.datasets.text import TextSettings

__all__ = [
    "SPECS",
    "DataOptions",
    "Dataset",
    "Split",
    "TextSettings",
    "dataset_name",
    "describe",
    "get_spec",
    "load_dataset",
    "with_options",
]
