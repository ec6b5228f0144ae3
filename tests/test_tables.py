"""Your own tables: `csv:PATH --label-col COL` without a text column. Encoding fitted on the
training split, the task read from the labels, Boston as a CSV equal to boston_housing, bad
tables refused in one line, and a classification table searched, exported and predicted."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from pipeline import datasets, inference
from pipeline.cli import app
from pipeline.datasets import CsvOptions, splits, tabular
from pipeline.datasets.builtin import boston_housing
from pipeline.errors import UserError
from pipeline.training import train_and_evaluate
from tests.conftest import runs_of, space_file


def write_table(path, n: int = 60, seed: int = 0, **extra) -> str:
    """Houses: two numbers, a town (3 categories), a price and a price band (3 strings)."""
    rng = np.random.RandomState(seed)
    rooms = rng.uniform(3, 9, n).round(2)
    age = rng.uniform(0, 100, n).round(1)
    town = np.array(["north", "south", "east"])[np.arange(n) % 3]
    price = (10 + 4 * rooms - 0.05 * age + (town == "south") * 5).round(2)
    band = np.where(price < 30, "cheap", np.where(price < 38, "mid", "dear"))
    frame = pd.DataFrame({"rooms": rooms, "age": age, "town": town, "price": price, "band": band})
    for name, values in extra.items():
        if values is None:
            frame = frame.drop(columns=[name])
        else:
            frame[name] = values
    frame.to_csv(path, index=False)
    return f"csv:{path}"


def test_numbers_are_filled_and_standardized_and_strings_one_hot_from_train(tmp_path, caplog):
    path = tmp_path / "h.csv"
    write_table(path)
    frame = pd.read_csv(path, dtype=str)
    frame.loc[[0, 1, 2], "rooms"] = ""
    frame.loc[3, "town"] = "NA"
    frame.to_csv(path, index=False)
    with caplog.at_level(logging.WARNING, logger="pipeline"):
        spec = datasets.spec_of(f"csv:{path}", CsvOptions(label_col="price", k_folds=0))
    assert [r.message for r in caplog.records] == [
        f"{path}: 4 missing feature values (numbers: the training median; strings: a "
        "category of their own)"
    ]
    assert spec.task == "regression" and spec.default_spaces == ("table",)
    data = datasets.load_dataset(spec)
    # the Boston split (a seeded fifth for test), then a held-out fifth of train
    assert (len(data.train), len(data.val), len(data.test), data.k_folds) == (39, 9, 12, 0)
    encoding = datasets.fitted_for(spec).table
    rooms, age, town, band = encoding.columns
    assert (rooms.kind, town.kind, band.kind) == ("numeric", "categorical", "categorical")
    train_rows = splits.shuffled(60)[:48][9:]
    raw = pd.to_numeric(frame["rooms"].iloc[train_rows].replace("", np.nan))
    assert rooms.fill == pytest.approx(raw.median())
    assert rooms.mean == pytest.approx(raw.fillna(raw.median()).mean())
    assert data.train.x[:, 0].mean() == pytest.approx(0, abs=1e-5)  # standardized on train
    assert data.train.x[:, 0].std() == pytest.approx(1, abs=1e-4)
    assert band.categories == ("cheap", "dear", "mid")
    seen = set(frame["town"].iloc[train_rows].replace("NA", "(missing)"))
    assert town.categories == tuple(sorted(seen))
    assert data.n_features == 2 + len(town.categories) + 3
    unseen = encoding.transform(
        pd.DataFrame({"rooms": [5], "age": [None], "town": ["west"]} | {"band": ["mid"]})
    )
    assert unseen[0, 2 : 2 + len(town.categories)].tolist() == [0.0] * len(town.categories)
    assert unseen[0, 1] == pytest.approx((age.fill - age.mean) / age.std)


@pytest.mark.parametrize(
    ("label", "options", "task", "classes"),
    [
        ("price", {}, "regression", ()),
        ("band", {}, "multiclass", ("cheap", "dear", "mid")),
        ("cheap", {}, "binary", ("0", "1")),
        ("bedrooms", {}, "multiclass", ("1", "2", "3", "10")),  # few integers: classes
        ("bedrooms", {"task": "regression"}, "regression", ()),
    ],
)
def test_the_task_comes_from_the_label_column(tmp_path, label, options, task, classes):
    n = 60
    name = write_table(
        tmp_path / "h.csv",
        n,
        cheap=(np.arange(n) % 2),
        bedrooms=np.array([1, 2, 3, 10])[np.arange(n) % 4],
    )
    spec = datasets.spec_of(name, CsvOptions(label_col=label, feature_cols=("rooms",), **options))
    assert (spec.task, spec.class_names) == (task, classes)
    data = datasets.load_dataset(spec)
    assert data.k_folds == 4 and data.val is None  # under 2,000 training rows: 4 folds
    if task == "binary":
        assert data.train.y.dtype == np.float32 and set(data.train.y) == {0.0, 1.0}


def test_housing_as_a_csv_is_boston_housing(real_data, tmp_path):
    table = boston_housing.read_housing_data(real_data / "housing.data")
    path = tmp_path / "houses.csv"
    table.features.assign(MEDV=table.labels).to_csv(path, index=False)
    mine = datasets.load_dataset(datasets.spec_of(f"csv:{path}", CsvOptions(label_col="MEDV")))
    theirs = datasets.load_dataset("boston_housing")
    assert (len(mine.train), len(mine.test), mine.k_folds) == (404, 102, 4)
    assert mine.task == theirs.task == "regression"
    assert np.array_equal(mine.test.y, theirs.test.y)
    assert np.array_equal(mine.train.x, theirs.train.x)  # one path for every table
    values = {"units": [32], "loss": "mse", "epochs": 15, "batch_size": 32, "learning_rate": 0.003}
    a = train_and_evaluate(values, mine, seed=0, keep_best=True).test["test_mae"]
    b = train_and_evaluate(values, theirs, seed=0, keep_best=True).test["test_mae"]
    assert a == pytest.approx(b, rel=0.02)  # same rows, same seed: within float noise


@pytest.mark.parametrize(
    ("extra", "options", "message"),
    [
        ({"flat": ["same"] * 60}, {"label_col": "flat"}, "label column 'flat' is constant"),
        ({"empty": [""] * 60}, {"label_col": "price"}, "feature column 'empty' is empty"),
        (
            {"note": [f"a long free text about house {i}" for i in range(60)]},
            {"label_col": "price"},
            "column 'note' holds free text; search it as a text dataset with --text-col note",
        ),
        (
            {"code": [f"H{i:03d}" for i in range(60)]},
            {"label_col": "price"},
            "column 'code' looks like an identifier",
        ),
        (
            {},
            {"label_col": "price", "task": "binary"},
            "--task binary does not fit 60 distinct labels",
        ),
        ({}, {"label_col": "price", "task": "guess"}, "--task must be one of regression"),
    ],
)
def test_bad_tables_are_one_line_and_create_nothing(tmp_path, stores, extra, options, message):
    table = write_table(tmp_path / "h.csv", band=None, **extra)
    args = ["search", table, "--n-trials", "1"]
    for key, value in options.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.output
    assert sorted(p.name for p in (tmp_path / "mlruns").iterdir()) == ["mlflow.db"]


def test_too_few_rows_and_the_text_option_are_refused(tmp_path):
    with pytest.raises(UserError, match="19 labelled rows; a table needs at least 20"):
        datasets.spec_of(write_table(tmp_path / "h.csv", n=19), CsvOptions(label_col="price"))
    with pytest.raises(UserError, match="--feature-cols, --task and --k-folds are for tables"):
        datasets.spec_of(f"csv:{tmp_path / 'h.csv'}", CsvOptions("town", "price", ("age",)))


TABLE_SPACE = {
    "defaults": {"units": 8, "epochs": 3, "batch_size": 16, "learning_rate": 0.01},
    "search": {"units": {"type": "int", "low": 4, "high": 16}},
}


def test_a_classification_table_searches_exports_and_predicts_class_names(tmp_path, stores):
    table = write_table(tmp_path / "h.csv", n=120)
    columns = ["--label-col", "band", "--feature-cols", "rooms,age,town"]
    space = space_file(tmp_path, TABLE_SPACE)
    args = ["search", table, *columns, "--n-trials", "2", "--space", str(space)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    name = f"csv:{(tmp_path / 'h.csv').resolve()}?label=band&features=rooms,age,town"
    parents, children = runs_of(stores["tracking"], name)
    assert len(parents) == 1 and len(children) == 2
    assert all("test_accuracy" in c.data.metrics for c in children)
    export = CliRunner().invoke(app, ["export", table, *columns])
    assert export.exit_code == 0 and "test_accuracy" in export.output
    rows = pd.read_csv(tmp_path / "h.csv").iloc[:5]
    rows.to_csv(tmp_path / "rows.csv", index=False)
    predict = ["predict", table, *columns, "--file", str(tmp_path / "rows.csv")]
    predicted = CliRunner().invoke(app, [*predict, "--format", "json"])
    assert predicted.exit_code == 0, predicted.output
    out = json.loads(predicted.output[predicted.output.index("[") :])
    assert len(out) == 5 and {r["label"] for r in out} <= {"cheap", "mid", "dear"}
    assert [r["row"] for r in out] == [1, 2, 3, 4, 5]
    assert all(1 / 3 <= r["probability"] <= 1 for r in out)  # the chosen class's probability


def test_the_table_bundle_predicts_what_the_trial_scored(tmp_path):
    name = write_table(tmp_path / "h.csv", n=100)
    spec = datasets.spec_of(name, CsvOptions(label_col="price", k_folds=0))
    data = datasets.load_dataset(spec)
    values = {"units": [8], "loss": "mse", "epochs": 5, "batch_size": 8, "learning_rate": 0.02}
    result = train_and_evaluate(values, data, seed=0)
    result.model.save(tmp_path / "m.keras")
    fitted = datasets.fitted_for(spec)
    bundle = inference.save_bundle(tmp_path / "b", tmp_path / "m.keras", fitted, "regression", ())
    raw = pd.read_csv(tmp_path / "h.csv")
    test = raw.iloc[splits.shuffled(100)[80:]]
    out = inference.Predictor(bundle).predict(test.drop(columns=["price"]))
    mae = np.mean(np.abs(out["value"].to_numpy() - test["price"].to_numpy()))
    assert mae == pytest.approx(result.test["test_mae"], rel=1e-4)
    assert json.loads((bundle / inference.SETTINGS).read_text())["table"][2]["categories"] == [
        "east",
        "north",
        "south",
    ]
    assert isinstance(fitted.table, tabular.Encoding)


def test_a_seed_style_table_reproduces_on_your_own_table(tmp_path, stores):
    write_table(tmp_path / "h.csv", n=60)
    rows = tmp_path / "my-table.yaml"
    rows.write_text(
        f"name: my-table\ndataset: csv:{tmp_path / 'h.csv'}?label=price&features=rooms,age\n"
        "defaults: {loss: mse, batch_size: 16, learning_rate: 0.01, epochs: 3}\n"
        "rows:\n"
        "  - {setting: one layer, units: [8], seed: {split: val, mae: 2.5}}\n"
        "  - {setting: two layers, units: [8, 8], seed: {split: val, mae: 2.0}}\n"
    )
    result = CliRunner().invoke(app, ["reproduce", str(rows), "--seeds", "1"])
    assert result.exit_code == 0, result.output
    table = [line for line in result.output.splitlines() if line.startswith("| ")]
    assert len(table) == 3 and "one layer" in table[1] and "two layers" in table[2]
    cells = [[c.strip() for c in line.split("|")] for line in table]
    assert [row[4] for row in cells[1:]] == ["2.5", "2"]  # the reported numbers, beside ours
    assert all("±" in row[5] for row in cells[1:])
