"""What a dataset's features were fitted with (for the end-to-end model), and the rows of
`pipeline datasets`."""

from __future__ import annotations

import numpy as np

from pipeline import settings as paths
from pipeline.datasets import boston, tabular, text
from pipeline.datasets.archives import fetch
from pipeline.datasets.registry import (
    Spec,
    archive,
    boston_rows,
    cache_file,
    load_dataset,
    resolve,
    table_rows,
)
from pipeline.datasets.types import DataOptions, Fitted


def fitted_for(spec: Spec, options: DataOptions | None = None) -> Fitted:
    """What `load_dataset(spec, options)`'s features were fitted with (a cache written
    before this was kept is rebuilt once)."""
    options = options or DataOptions()
    data_dir = paths.data_dir()
    if spec.name == "boston_housing":
        x, _ = boston.read_rows(fetch(spec.source, data_dir))
        train = x[boston_rows(len(x))[0]]
        mean, std = boston.standardization(train)  # as the dataset was standardized
        fill = np.median(train, axis=0)
        return Fitted(table=tabular.numeric_encoding(boston.COLUMNS[:-1], fill, mean, std))
    if spec.table is not None:
        (train, _, _), _ = table_rows(spec.source, spec.table)
        return Fitted(table=spec.table.fit(train))
    breaks = spec.name == "imdb"  # the IMDB reader replaces "<br />" (imdb.clean)
    if options.text.output_mode == "encoder":
        return Fitted(text=options.text, clean_breaks=breaks)
    location = spec.source.path if spec.is_user else archive(spec, data_dir)
    path = cache_file(spec.name, location, data_dir, options)
    arrays = text.load_fitted(path)
    if arrays is None:
        path.unlink(missing_ok=True)
        load_dataset(spec, options)
        arrays = text.load_fitted(path) or {}
    vocabulary = tuple(str(v) for v in arrays.get("vocabulary", ()))
    return Fitted(options.text, vocabulary, arrays.get("weights"), clean_breaks=breaks)


def describe(dataset: Spec | str) -> dict:
    """One row of `pipeline datasets`: sizes of the local data, or the official ones."""
    spec = dataset if isinstance(dataset, Spec) else resolve(dataset)
    data_dir = paths.data_dir()
    mine = spec.is_user
    location = spec.source.path if mine else spec.source.local(data_dir)
    row = {"name": spec.name, "task": spec.task}
    if location is None:
        n_train, n_val, n_test = spec.sizes
        return row | {
            "n_train": n_train,
            "n_val": n_val,
            "n_test": n_test,
            "n_classes": spec.n_classes,
            "n_features": spec.n_features,
            "source": spec.source.describe(data_dir),
        }
    table = spec.table is not None
    cached = not table and cache_file(spec.name, location, data_dir, DataOptions()).is_file()
    data = load_dataset(spec)
    source = "cached" if cached else f"{'texts' if mine else 'archive'} found at {location}"
    row |= {
        "n_train": len(data.train),
        "n_val": len(data.val) if data.val else f"{data.k_folds}-fold",
        "n_test": len(data.test),
        "n_classes": data.n_classes,
        "n_features": data.n_features,
        "source": source,
    }
    if table:  # how each raw column becomes features
        row["source"] = f"table found at {location}"
        columns = fitted_for(spec).table.columns
        row["features"] = [{"column": c.name, "encoding": c.describe()} for c in columns]
    return row
