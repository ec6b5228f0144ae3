"""Prediction input as people write CSV: integer-valued feature columns are the numbers the
model was logged with (by `pipeline predict` and by `mlflow models serve`); a value that is
no number is refused in one line naming its column."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_wine
from typer.testing import CliRunner

from pipeline import prediction
from pipeline.cli import app
from pipeline.errors import UserError
from tests.conftest import _free_port

SPACE = {
    "description": "a small table network",
    "defaults": {"n_layers": 1, "units": 16, "activation": "relu", "dropout": 0.0,
                 "optimizer": "adam", "learning_rate": 0.01, "epochs": 5, "batch_size": 16},
}  # fmt: skip
INTEGER_COLUMNS = ["magnesium", "proline"]  # whole numbers in the wine data


@pytest.fixture(scope="module")
def wine_model(tmp_path_factory, mlflow_template):
    """A table model of scikit-learn's wine data, registered in fresh stores: (folder, env)."""
    import shutil

    import yaml

    folder = tmp_path_factory.mktemp("wine")
    frame = load_wine(as_frame=True).frame
    frame[INTEGER_COLUMNS] = frame[INTEGER_COLUMNS].astype(int)
    frame.to_csv(folder / "wine.csv", index=False)
    (folder / "space.yaml").write_text(yaml.safe_dump(SPACE))
    (folder / "mlruns").mkdir()
    shutil.copy(mlflow_template, folder / "mlruns" / "mlflow.db")
    env = {
        "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}",
        "PIPELINE_STORAGE": f"sqlite:///{folder / 'mlruns' / 'optuna.db'}",
        "PIPELINE_CACHE_DIR": str(folder / "cache"),
    }
    args = ["search", f"csv:{folder / 'wine.csv'}", "--label-col", "target"]
    args += ["--space", str(folder / "space.yaml"), "--n-trials", "1"]
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    return folder, env


def predict(folder: Path, env: dict, rows: pd.DataFrame, name: str):
    rows.to_csv(folder / name, index=False)
    args = ["predict", f"csv:{folder / 'wine.csv'}", "--label-col", "target"]
    args += ["--file", str(folder / name), "--format", "csv"]
    return CliRunner().invoke(app, args, env=env)


def test_integer_columns_predict_as_the_floats_they_are(wine_model):
    folder, env = wine_model
    rows = load_wine(as_frame=True).frame.drop(columns="target").iloc[::20]
    as_ints = rows.astype({c: int for c in INTEGER_COLUMNS})
    assert "magnesium" in (folder / "wine.csv").read_text().splitlines()[0]
    with_ints = predict(folder, env, as_ints, "ints.csv")
    assert with_ints.exit_code == 0, with_ints.output
    assert ",127," in (folder / "ints.csv").read_text().splitlines()[1]  # written as 127
    with_floats = predict(folder, env, rows.astype(float), "floats.csv")
    assert with_ints.output == with_floats.output
    labels = pd.read_csv(pd.io.common.StringIO(with_ints.output))["label"]
    assert len(labels) == len(rows) and set(labels) <= {0, 1, 2}


def test_a_value_that_is_no_number_is_one_line_naming_its_column(wine_model):
    folder, env = wine_model
    rows = load_wine(as_frame=True).frame.drop(columns="target").head(3).astype(object)
    rows.loc[1, "magnesium"] = "lots"
    result = predict(folder, env, rows, "bad.csv")
    assert result.exit_code == 2
    assert (
        result.output.strip()
        == f"error: {folder / 'bad.csv'}: column 'magnesium': 'lots' is not a number"
    )


def test_coerce_types_columns_by_the_signature():
    frame = pd.DataFrame({"a": [1, 2], "b": ["3", "n/a"], "c": [7, 8], "d": ["x", None]})
    types = {"a": "double", "b": "double", "c": "float", "d": "string"}
    out = prediction.coerce(frame, types, None)
    assert [str(out[c].dtype) for c in "abc"] == ["float64", "float64", "float32"]
    assert out["b"].tolist()[0] == 3.0 and np.isnan(out["b"].tolist()[1])
    assert out["d"].iloc[0] == "x" and pd.isna(out["d"].iloc[1])
    with pytest.raises(UserError, match=r"^the input: column 'a': 'one' is not a number$"):
        prediction.coerce(pd.DataFrame({"a": ["one"]}), {"a": "double"}, None)


@pytest.mark.slow
def test_mlflow_models_serve_accepts_integer_columns(wine_model):
    folder, env = wine_model
    name = json.loads(
        CliRunner().invoke(app, ["datasets", f"csv:{folder / 'wine.csv'}", "--label-col",
                                 "target", "--json"], env=env).output
    )[0]["name"]  # fmt: skip
    model = "models:/" + __import__("pipeline.tracking.models").tracking.models.registered_name(
        name
    )
    port = _free_port()
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"{model}@champion"]
    command += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    server = subprocess.Popen(
        command, env=os.environ | env | {"PATH": path}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    rows = load_wine(as_frame=True).frame.drop(columns="target").head(4)
    as_ints = rows.astype({c: int for c in INTEGER_COLUMNS})
    try:
        _wait(f"http://127.0.0.1:{port}/ping", time.monotonic() + 120)
        split = json.loads(as_ints.to_json(orient="split", index=False))
        assert split["data"][0][4] == 127  # an integer in the request
        served_json = _post(port, json.dumps({"dataframe_split": split}), "application/json")
        served_csv = _post(port, as_ints.to_csv(index=False), "text/csv")
    finally:
        server.terminate()
        server.wait(30)
    local = predict(folder, env, as_ints, "served.csv")
    expected = pd.read_csv(pd.io.common.StringIO(local.output))
    for served in (served_json, served_csv):
        assert list(served["label"].astype(str)) == list(expected["label"].astype(str))
        assert np.allclose(served["probability"], expected["probability"], atol=1e-4)


def _post(port: int, body: str, content_type: str) -> pd.DataFrame:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/invocations",
        data=body.encode(),
        headers={"Content-Type": content_type},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return pd.DataFrame(json.loads(response.read())["predictions"])


def _wait(url: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer")
