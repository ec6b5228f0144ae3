"""What a dataset's features were fitted with (for the end-to-end model), and the rows of
`pipeline datasets`."""

from __future__ import annotations

from pipeline import settings as paths
from pipeline.datasets import arrays, text
from pipeline.datasets.registry import (
    Spec,
    cache_file,
    load_dataset,
    location,
    spec_of,
    spec_table,
    table_rows,
)
from pipeline.datasets.types import DataOptions, Fitted


def fitted_for(spec: Spec, options: DataOptions | None = None) -> Fitted:
    """What `load_dataset(spec, options)`'s features were fitted with (a cache written
    before this was kept is rebuilt once)."""
    options = options or DataOptions()
    if spec.kind == arrays.KIND:  # taken as they are: two rows show the model's input
        return Fitted(example=arrays.example(spec.source))
    data_dir = paths.data_dir()
    where = location(spec, data_dir)
    if spec.is_table:
        table = spec_table(spec, where)
        (train, _, _), _ = table_rows(spec, table, where)
        return Fitted(table=table.fit(train))
    changes = () if spec.is_user else spec.declaration.replacements
    if options.text.output_mode == "encoder":
        return Fitted(text=options.text, replacements=changes)
    path = cache_file(spec, where, data_dir, options)
    stored = text.load_fitted(path)
    if stored is None:
        path.unlink(missing_ok=True)
        load_dataset(spec, options)
        stored = text.load_fitted(path) or {}
    vocabulary = tuple(str(v) for v in stored.get("vocabulary", ()))
    return Fitted(options.text, vocabulary, stored.get("weights"), replacements=changes)


def describe(dataset: Spec | str) -> dict:
    """One row of `pipeline datasets`: sizes of the local data, or the declared ones."""
    spec = dataset if isinstance(dataset, Spec) else spec_of(dataset)
    data_dir = paths.data_dir()
    mine = spec.is_user
    found = spec.source.path if mine else spec.source.local(data_dir)
    row = {"name": spec.name, "task": spec.task, "from": _origin(spec)}
    if found is None:
        n_train, n_val, n_test = spec.declaration.sizes
        return row | {
            "n_train": n_train,
            "n_val": n_val,
            "n_test": n_test,
            "n_classes": spec.n_classes,
            "n_features": spec.declaration.n_features,
            "source": spec.source.describe(data_dir),
        }
    cached = not spec.is_table and cache_file(spec, found, data_dir, DataOptions()).is_file()
    data = load_dataset(spec)
    source = f"texts found at {found}" if mine else spec.source.describe(data_dir)
    row |= {
        "n_train": len(data.train),
        "n_val": len(data.val) if data.val else f"{data.k_folds}-fold",
        "n_test": len(data.test),
        "n_classes": data.n_classes,
        "n_features": data.n_features,
        "source": "cached" if cached else source,
    }
    if spec.is_table:  # how each raw column becomes features
        row["source"] = f"table found at {found}" if mine else spec.source.describe(data_dir)
        columns = fitted_for(spec).table.columns
        row["features"] = [{"column": c.name, "encoding": c.describe()} for c in columns]
    return row


def _origin(spec: Spec) -> str:
    """Who provides it: this package, a plugin's distribution, or the user."""
    if spec.is_user:
        return "your files"
    return spec.distribution or "built in"
