"""Bad input: one line on stderr, exit code 2, and no study, trial or MLflow run created."""

from __future__ import annotations

import tarfile
from pathlib import Path

import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from pipeline.cli import app
from tests.conftest import TINY_SPACE, add_file

BAD_SPACES = {
    "malformed.yaml": "search: {n_layers: [1, 2",
    "unknown-key.yaml": {**TINY_SPACE, "search": {"layers": {"type": "int", "low": 1, "high": 2}}},
    "wrong-type.yaml": {
        **TINY_SPACE,
        "search": {"n_layers": {"type": "int", "low": "a", "high": 2}},
    },
    "low-high.yaml": {**TINY_SPACE, "search": {"n_layers": {"type": "int", "low": 3, "high": 1}}},
    "empty.yaml": {**TINY_SPACE, "search": {"activation": {"type": "categorical", "choices": []}}},
    "flat.yaml": {**TINY_SPACE, "search": {}},
}


def corrupt(data: Path) -> None:
    (data / "aclImdb_v1.tar.gz").write_bytes(b"not an archive at all")


def truncate(data: Path) -> None:
    path = data / "aclImdb_v1.tar.gz"
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def escaping(data: Path) -> None:
    with tarfile.open(data / "aclImdb_v1.tar.gz", "w:gz") as tar:
        add_file(tar, "aclImdb/../../evil.txt", b"x")


CASES = [
    ("unknown dataset", ["search", "mnist"], None, "unknown dataset 'mnist'"),
    ("n-trials 0", ["search", "imdb", "--n-trials", "0"], None, "--n-trials must be at least 1"),
    ("n-trials negative", ["search", "imdb", "--n-trials", "-3"], None, "at least 1, got -3"),
    ("workers 0", ["search", "imdb", "--workers", "0"], None, "--workers must be at least 1"),
    ("too many SQLite workers", ["search", "imdb", "--workers", "9"], None, "9 workers on SQLite"),
    (
        "unknown storage scheme",
        ["search", "imdb", "--storage", "foo://x/y"],
        None,
        "cannot open Optuna storage foo://x/y",
    ),
    (
        "unreachable storage host",
        ["search", "imdb", "--storage", "postgresql://u:hunter2@127.0.0.1:1/db"],
        None,
        "cannot open Optuna storage postgresql://u:***@127.0.0.1:1/db",
    ),
    (
        "tracking URI scheme",
        ["search", "imdb", "--tracking-uri", "ftp://x"],
        None,
        "unsupported MLflow tracking URI 'ftp://x'",
    ),
    (
        "negative timeout",
        ["search", "imdb", "--timeout", "-5"],
        None,
        "--timeout must be a positive number of seconds, got -5.0",
    ),
    ("heartbeat 0", ["search", "imdb", "--heartbeat", "0"], None, "--heartbeat must be at least 1"),
    (
        "negative seed",
        ["search", "imdb", "--seed", "-1"],
        None,
        "--seed must be between 0 and 2147483647, got -1",
    ),
    (
        "train negative seed",
        ["train", "imdb", "--seed", "-2"],
        None,
        "--seed must be between 0 and",
    ),
    ("export top 0", ["export", "imdb", "--top", "0"], None, "--top must be at least 1, got 0"),
    *[
        (f"train {' '.join(changes)}", ["train", "imdb", *changes, "epochs=1"], None, problem)
        for changes, problem in (
            (["units=16,16,16", "n_layers=2"], "n_layers is 2 but units gives 3 layers"),
            (["units=0"], "units: expected a positive int or a list of them, got 0"),
            (["units=16,0"], "units: expected a positive int or a list of them, got [16, 0]"),
            (["units=true"], "units: expected a positive int or a list of them, got True"),
            (["n_layers=0"], "n_layers: out of range: 0 (at least 1)"),
            (["batch_size=0"], "batch_size: out of range: 0 (at least 1)"),
            (["batch_size=yes"], "batch_size: expected int, got True"),
            (["batch_size=2.5"], "batch_size: expected int, got 2.5"),
            (["dropout=1.5"], "dropout: out of range: 1.5 (0 <= dropout < 1)"),
            (["dropout=1"], "dropout: out of range: 1 (0 <= dropout < 1)"),
            (["dropout=-0.1"], "dropout: out of range: -0.1 (0 <= dropout < 1)"),
            (["learning_rate=0"], "learning_rate: out of range: 0 (greater than 0)"),
            (["learning_rate=.nan"], "learning_rate: expected float, got nan"),
            (["early_stopping_patience=-1"], "early_stopping_patience: out of range: -1"),
            (["ngrams=1.0"], "unknown ngrams 1.0; expected one of 1, 2, 3"),
            (["layers=2"], "layers: unknown key"),
            (["units"], "expected key=value, got 'units'"),
        )
    ],
    (
        "csv k_folds not a number",
        ["search", "csv:table.csv?label=y&k_folds=two"],
        None,
        "k_folds must be a whole number, got 'two'",
    ),
    (
        "csv unknown query key",
        ["train", "csv:table.csv?lable=y"],
        None,
        "unknown option 'lable'; expected one of text, label, features, task, k_folds",
    ),
    ("csv k_folds 1", ["datasets", "csv:table.csv?label=y&k_folds=1"], None, "at least 2, got 1"),
    ("export format", ["export", "imdb", "--format", "xml"], None, "xml"),
    ("ui port", ["ui", "--port", "70000"], None, "--port must be between 1 and 65535"),
    ("dashboard port", ["dashboard", "--port", "0"], None, "--port must be between 1 and 65535"),
    (
        "predict tracking URI",
        ["predict", "imdb", "x", "--tracking-uri", "ftp://x"],
        None,
        "unsupported MLflow tracking URI 'ftp://x'",
    ),
    (
        "reproduce tracking URI",
        ["reproduce", "blog-imdb", "--tracking-uri", "ftp://x"],
        None,
        "unsupported MLflow tracking URI",
    ),
    ("timeout nan", ["search", "imdb", "--timeout", "nan"], None, "--timeout must be a positive"),
    ("seed too big", ["search", "imdb", "--seed", "4294967296"], None, "--seed must be between"),
    ("reproduce seeds", ["reproduce", "blog-imdb", "--seeds", "1001"], None, "between 1 and 1000"),
    (
        "grid, nothing searched",
        ["search", "imdb", "--sampler", "grid", "--space", "flat.yaml"],
        None,
        "the grid sampler needs at least one searched param",
    ),
    ("train value not YAML", ["train", "imdb", 'activation="'], None, "cannot read the value"),
    ("corrupt archive", ["search", "imdb"], corrupt, "corrupt or truncated archive"),
    ("truncated archive", ["search", "imdb"], truncate, "corrupt or truncated archive"),
    ("escaping member", ["search", "imdb"], escaping, "leaves the archive's folder"),
    *[
        (f"space {name}", ["search", "imdb", "--space", name], None, problem)
        for name, problem in (
            ("malformed.yaml", "not valid YAML"),
            ("unknown-key.yaml", "search.layers: unknown key"),
            ("wrong-type.yaml", "search.n_layers.low: expected int"),
            ("low-high.yaml", "low (3) is greater than high (1)"),
            ("empty.yaml", "search.activation.choices: expected a non-empty list"),
        )
    ],
]


def nothing_created(stores: dict[str, str]) -> None:
    optuna_db = Path(stores["storage"].removeprefix("sqlite:///"))
    if optuna_db.exists():
        assert optuna.get_all_study_names(storage=stores["storage"]) == []
    client = MlflowClient(tracking_uri=stores["tracking"])
    experiments = [e.experiment_id for e in client.search_experiments()]
    assert client.search_runs(experiments) == []


@pytest.mark.parametrize(
    ("label", "args", "damage", "message"), CASES, ids=[case[0] for case in CASES]
)
def test_bad_input(tiny_data, stores, tmp_path, monkeypatch, label, args, damage, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "table.csv").write_text("a,b,y\n1,2,0\n3,4,1\n")
    for name, raw in BAD_SPACES.items():
        (tmp_path / name).write_text(raw if isinstance(raw, str) else yaml.safe_dump(raw))
    if damage:
        damage(tiny_data)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ") and message in lines[0], lines[0]
    assert "hunter2" not in result.output and "Traceback" not in result.output
    nothing_created(stores)


@pytest.mark.slow
def test_unreachable_tracking_server(tiny_data, stores, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    result = CliRunner().invoke(app, ["search", "imdb", "--n-trials", "1"])
    assert result.exit_code == 2
    assert result.output.startswith(
        "error: cannot reach the MLflow tracking server at http://127.0.0.1:1"
    )
    assert not Path(stores["storage"].removeprefix("sqlite:///")).exists()
