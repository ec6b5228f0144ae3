"""`folder:PATH` and `csv:PATH` datasets: classes, splits, errors, and a search end to end."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.datasets import CsvOptions, dataset_name, describe, load_dataset, splits
from pipeline.errors import UserError
from tests.conftest import runs_of, space_file

WORDS = {"good": "great wonderful loved", "bad": "awful boring hated", "meh": "fine average"}


def write_texts(folder: Path, counts: dict[str, int]) -> None:
    for label, n in counts.items():
        (folder / label).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            (folder / label / f"{i}.txt").write_text(f"{WORDS[label]} film number {i}")


def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "review", "sentiment"])
        writer.writerows((i, text, label) for i, (text, label) in enumerate(rows))
    return path


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("PIPELINE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_folder_without_test_split_is_split_with_the_seed(tmp_path, cache):
    write_texts(tmp_path / "reviews", {"good": 30, "bad": 20})
    data = load_dataset(f"folder:{tmp_path / 'reviews'}")
    # 50 texts: test a fifth (10), validation a fifth of the remaining 40 (8), train 32
    assert (len(data.train), len(data.val), len(data.test)) == (32, 8, 10)
    assert data.task == "binary" and data.class_names == ("bad", "good")
    assert data.train.y.dtype == np.float32
    labels = np.array([0] * 20 + [1] * 30)  # classes sorted, files sorted
    assert np.array_equal(data.test.y, labels[splits.shuffled(50)[:10]])
    assert data.name == f"folder:{(tmp_path / 'reviews').resolve()}"


def test_folder_with_train_and_test_keeps_them_and_ignores_unlabelled(tmp_path, cache):
    root = tmp_path / "aclImdb-like"
    write_texts(root / "train", {"good": 10, "bad": 10, "meh": 5})  # meh: like train/unsup
    write_texts(root / "test", {"good": 7, "bad": 6})
    data = load_dataset(f"folder:{root}")
    assert data.class_names == ("bad", "good")
    assert (len(data.train), len(data.val), len(data.test)) == (16, 4, 13)
    assert data.test.y.sum() == 7


def test_three_classes_are_multiclass_and_cached(tmp_path, cache):
    write_texts(tmp_path / "t", {"good": 10, "bad": 10, "meh": 10})
    data = load_dataset(f"folder:{tmp_path / 't'}")
    assert data.task == "multiclass" and data.n_classes == 3
    assert sorted(set(data.train.y) | set(data.val.y) | set(data.test.y)) == [0, 1, 2]
    assert len(list(cache.glob("folder-t-*.npz"))) == 1
    (tmp_path / "t" / "meh" / "new.txt").write_text("another average film")
    again = load_dataset(f"folder:{tmp_path / 't'}")
    assert sum(map(len, (again.train, again.val, again.test))) == 31
    assert len(list(cache.glob("folder-t-*.npz"))) == 2  # a changed folder is a new cache


def test_csv_columns_labels_and_dropped_rows(tmp_path, cache):
    rows = [(f"{WORDS[lab]} {i}", lab) for i in range(12) for lab in ("good", "bad", "meh")]
    path = write_csv(tmp_path / "r.csv", [*rows, ("", "good"), ("no label", "")])
    name = dataset_name(f"csv:{path}", CsvOptions("review", "sentiment"))
    assert name == f"csv:{path.resolve()}?text=review&label=sentiment"
    data = load_dataset(name)
    assert data.class_names == ("bad", "good", "meh") and data.task == "multiclass"
    assert len(data.train) + len(data.val) + len(data.test) == 36  # two empty rows dropped
    row = describe(name)
    assert (row["n_classes"], row["n_test"], row["source"]) == (3, 7, "cached")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: write_texts(p / "one", {"good": 5}), r"found 1 class folder\(s\)"),
        (lambda p: None, "is not a folder"),
    ],
)
def test_folder_errors(tmp_path, cache, make, message):
    make(tmp_path)
    with pytest.raises(UserError, match=message):
        load_dataset(f"folder:{tmp_path / 'one'}")


def test_csv_errors(tmp_path, cache):
    path = write_csv(tmp_path / "r.csv", [("a", "x"), ("b", "x")])
    with pytest.raises(UserError, match="no column 'label'; columns are id, review, sentiment"):
        load_dataset(f"csv:{path}")  # no text column named or called text: a table
    with pytest.raises(UserError, match="no column 'review'; columns are text, label"):
        path.write_text("text,label\na,x\n")
        load_dataset(dataset_name(f"csv:{path}", CsvOptions("review")))
    with pytest.raises(UserError, match="has 1 distinct label"):
        load_dataset(f"csv:{path}")  # a `text` column: a text dataset, as before tables
    with pytest.raises(UserError, match="--text-col, --label-col, --feature-cols.* are for csv"):
        dataset_name("imdb", CsvOptions("review"))


def test_cli_search_and_export_a_csv_dataset(tmp_path, cache, stores):
    rows = [(f"{WORDS[lab]} film {i}", lab) for i in range(20) for lab in ("good", "bad")]
    path = write_csv(tmp_path / "r.csv", rows)
    space = dict(TEXT_SPACE)
    columns = ["--text-col", "review", "--label-col", "sentiment"]
    args = ["search", f"csv:{path}", *columns, "--n-trials", "2", "--pruner", "none"]
    result = CliRunner().invoke(app, [*args, "--space", str(space_file(tmp_path, space))])
    assert result.exit_code == 0, result.output
    name = f"csv:{path.resolve()}?text=review&label=sentiment"
    assert f"study '{name}': ran 2 trials now" in result.output
    parents, children = runs_of(stores["tracking"], name)
    assert len(parents) == 1 and len(children) == 2
    assert {c.data.params["max_tokens"] for c in children} <= {"50", "100"}
    export = CliRunner().invoke(app, ["export", f"csv:{path}", *columns])
    assert export.exit_code == 0, export.output
    ranked = [line for line in export.output.splitlines() if line.startswith("|")][2:]
    assert len(ranked) == 2
    listing = CliRunner().invoke(app, ["datasets", f"csv:{path}", *columns, "--json"])
    assert '"n_classes": 2' in listing.output and name in listing.output


TEXT_SPACE = {
    "defaults": {"units": 8, "epochs": 2, "batch_size": 8, "learning_rate": 0.01},
    "search": {
        "max_tokens": {"type": "categorical", "choices": [50, 100]},
        "output_mode": {"type": "categorical", "choices": ["multi_hot", "tf_idf"]},
    },
}
