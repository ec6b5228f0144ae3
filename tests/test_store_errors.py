"""Stores and folders that are not what they should be: a damaged or foreign database file, a
read-only store, a store or data folder under a regular file, a broken `folder:` dataset, a
binary space file, a tracking server that is not there. Each is one line on stderr
("error: ..."), exit code 2, no traceback, nothing written; and reading a read-only store
works. The commands run as a user runs them: `python -m pipeline` in a process of its own."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from tests.conftest import _free_port, space_file
from tests.test_bad_input import nothing_created

MALFORMED = "database disk image is malformed"
NOT_A_DATABASE = "file is not a database"


def pipeline(*args: str, prefix: tuple[str, ...] = (), env: dict | None = None):
    """`python -m pipeline ARGS` (after `prefix`, a wrapping command), with this process's
    environment (the fixtures' stores and data) plus `env`."""
    return subprocess.run(
        [*prefix, sys.executable, "-m", "pipeline", *args],
        env=os.environ | (env or {}),
        capture_output=True,
        text=True,
        timeout=300,
    )


def one_line(done, expected: str) -> None:
    """Exit code 2, and stderr exactly `error: EXPECTED` (no traceback, no log line)."""
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr.strip().splitlines() == [f"error: {expected}"]


def invoke(args: list[str], expected: str) -> None:
    """The same check in this process (for the errors met before any store is opened)."""
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # a UserError, not an escaped traceback
    assert result.stderr.strip().splitlines() == [f"error: {expected}"]


def stores_in(folder: Path) -> dict[str, str]:
    return {
        "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}",
        "PIPELINE_STORAGE": f"sqlite:///{folder / 'optuna.db'}",
    }


@pytest.fixture(scope="module")
def searched(tiny_archives, mlflow_template, tmp_path_factory) -> Path:
    """A folder with data/ (the tiny archives), tiny.yaml, and mlruns/: stores holding a
    finished one-trial `imdb` study, its trial run and its registered champion."""
    folder = tmp_path_factory.mktemp("searched")
    shutil.copytree(tiny_archives, folder / "data")
    (folder / "mlruns").mkdir()
    shutil.copy(mlflow_template, folder / "mlruns" / "mlflow.db")
    env = stores_in(folder / "mlruns") | {
        "PIPELINE_DATA_DIR": str(folder / "data"),
        "PIPELINE_CACHE_DIR": str(folder / "cache"),
    }
    args = ["search", "imdb", "--space", str(space_file(folder)), "--n-trials", "1"]
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    return folder


@pytest.fixture
def searched_data(searched, monkeypatch) -> Path:
    """`searched`'s data and its cache (IMDB already vectorized: no "vectorizing" note)."""
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(searched / "data"))
    monkeypatch.setenv("PIPELINE_CACHE_DIR", str(searched / "cache"))
    return searched / "data"


@pytest.fixture
def searched_env(searched, searched_data, monkeypatch) -> Path:
    """A copy of `searched`'s stores, set as this test's stores; returns their folder."""
    folder = searched / "copies" / os.urandom(4).hex()
    shutil.copytree(searched / "mlruns", folder)
    for key, value in stores_in(folder).items():
        monkeypatch.setenv(key, value)
    return folder


# --- 1. a folder: dataset with no words, a link loop, a broken link ------------------------


def broken_folder(root: Path, case: str) -> tuple[Path, str]:
    """A class-per-subfolder dataset with one flaw; its folder and the problem said."""
    root = root.resolve()
    for label in ("pos", "neg"):
        (root / label).mkdir(parents=True)
        for i in range(10):
            text = "" if case == "empty texts" else f"{label} words number {i}"
            (root / label / f"{i}.txt").write_text(text)
    bad = root / "pos" / "bad.txt"
    if case == "empty texts":
        return (
            root,
            "the training texts hold no words (are its files empty?); give it texts with words",
        )
    if case == "link loop":
        bad.symlink_to(bad.name)
        return root, f"{bad} is a symbolic link loop; remove it or point it at a text file"
    target = root / "gone.txt"
    bad.symlink_to(target)
    return root, f"{bad} is a broken symbolic link (to {target}); remove it or restore {target}"


@pytest.mark.parametrize("command", ["datasets", "search"])
@pytest.mark.parametrize("case", ["empty texts", "link loop", "dangling link"])
def test_a_broken_folder_dataset_is_one_line(tiny_data, stores, tmp_path, case, command):
    folder, problem = broken_folder(tmp_path / "texts", case)
    args = [command, f"folder:{folder}"]
    if command == "search":
        args += ["--space", str(space_file(tmp_path)), "--n-trials", "1"]
    invoke(args, f"folder:{folder}: {problem}")
    nothing_created(stores)


# --- 2. a damaged store, a file that is no database ----------------------------------------


def damage(database: Path, how: str) -> None:
    """Garbage over the middle third of the file, or another file in its place."""
    if how == NOT_A_DATABASE:
        database.write_text("name,value\nthis is,a CSV file\n" * 200)
        return
    size = database.stat().st_size
    with open(database, "r+b") as handle:
        handle.seek(size // 3)
        handle.write(b"\xde\xad\xbe\xef" * (size // 12))


def damaged_line(database: Path, how: str) -> str:
    if how == NOT_A_DATABASE:
        return (
            f"{database} is not an SQLite database ({how}); check --tracking-uri and "
            "--storage (MLFLOW_TRACKING_URI, PIPELINE_STORAGE), or move the file away"
        )
    return (
        f"the store {database} is damaged ({how}); restore it from a backup, or move it "
        f"away to start a new store (sqlite3 {database} .recover saves what it can)"
    )


TRACKING_COMMANDS = {
    "search": ["search", "imdb", "--n-trials", "2"],
    "export": ["export", "imdb"],
    "predict": ["predict", "imdb", "a wonderful film"],
    "delete-study": ["delete-study", "imdb", "--yes"],
}


@pytest.mark.parametrize("how", [MALFORMED, NOT_A_DATABASE])
@pytest.mark.parametrize("command", list(TRACKING_COMMANDS))
def test_a_damaged_tracking_store_is_one_line(searched, searched_env, command, how):
    database = searched_env / "mlflow.db"
    damage(database, how)
    before = (searched_env / "optuna.db").read_bytes()
    args = TRACKING_COMMANDS[command]
    if command == "search":
        args = [*args, "--space", str(searched / "tiny.yaml")]
    one_line(pipeline(*args), damaged_line(database, how))
    assert (searched_env / "optuna.db").read_bytes() == before  # the study is untouched


@pytest.mark.parametrize("command", [["studies"], ["delete-study", "imdb", "--yes"]])
def test_an_optuna_store_that_is_no_database_is_one_line(searched_env, command):
    database = searched_env / "optuna.db"
    damage(database, NOT_A_DATABASE)
    done = pipeline(*command)
    url = f"sqlite:///{database}"
    one_line(done, f"cannot open Optuna storage {url}: {damaged_line(database, NOT_A_DATABASE)}")


def test_a_damaged_optuna_store_is_one_line(searched_env):
    database = searched_env / "optuna.db"
    damage(database, MALFORMED)
    done = pipeline("studies")
    assert "Traceback" not in done.stderr and done.returncode == 2
    assert damaged_line(database, MALFORMED) in done.stderr


# --- 3. a read-only store, a store or data folder under a file -----------------------------


def _can_unshare() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    return probe.returncode == 0


@contextlib.contextmanager
def read_only(folder: Path):
    """A command prefix that sees `folder` read-only. As root (whom chmod does not stop),
    a read-only bind mount in a mount namespace of the command's own (nothing changes for
    other processes, nothing to undo); as another user, chmod 0o555."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield (), "Permission denied"
        finally:
            folder.chmod(0o755)
        return
    if not _can_unshare():
        pytest.skip("as root, a read-only store needs `unshare -m` and mount (not here)")
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
    yield ("unshare", "-m", "sh", "-c", script, str(folder)), "Read-only file system"


def test_a_new_store_in_a_read_only_folder_is_one_line(searched_data, tmp_path, monkeypatch):
    folder = tmp_path / "mlruns"
    folder.mkdir()
    for key, value in stores_in(folder).items():
        monkeypatch.setenv(key, value)
    with read_only(folder) as (prefix, why):
        done = pipeline("search", "imdb", "--space", str(space_file(tmp_path)), prefix=prefix)
    database = folder / "mlflow.db"
    one_line(
        done,
        f"cannot create the store {database}: {why} ({folder}); make the folder writable or "
        "choose another path (--tracking-uri, --storage, MLFLOW_TRACKING_URI, PIPELINE_STORAGE)",
    )
    assert list(folder.iterdir()) == []


def test_a_search_into_a_read_only_store_is_one_line(searched, searched_env):
    with read_only(searched_env) as (prefix, _):
        done = pipeline("search", "imdb", "--n-trials", "2", prefix=prefix)
    assert "Traceback" not in done.stderr and done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines() == [
        f"error: the store {searched_env / 'mlflow.db'} is read-only ({searched_env} cannot "
        "be written); this command writes to it: make it writable, or choose another store "
        "with --tracking-uri"
    ]


@pytest.mark.parametrize("command", ["search", "export"])
def test_a_store_under_a_regular_file_is_one_line(searched_data, stores, tmp_path, command):
    (tmp_path / "file.txt").write_text("a file, not a folder\n")
    database = tmp_path / "file.txt" / "mlflow.db"
    args = [command, "imdb", "--tracking-uri", f"sqlite:///{database}"]
    if command == "search":
        args += ["--space", str(space_file(tmp_path)), "--n-trials", "1"]
    one_line(
        pipeline(*args),
        f"cannot create the store {database}: {tmp_path / 'file.txt'} is a file, not a "
        "folder; choose another path with --tracking-uri or --storage",
    )
    nothing_created(stores)


@pytest.mark.parametrize("command", ["datasets", "search"])
def test_a_data_folder_that_is_a_file_is_one_line(stores, tmp_path, monkeypatch, command):
    data = tmp_path / "data.txt"
    data.write_text("a file, not a folder\n")
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(data))
    monkeypatch.setenv("PIPELINE_CACHE_DIR", str(tmp_path / "cache"))
    args = [command, "imdb"] + (["--n-trials", "1"] if command == "search" else [])
    invoke(
        args,
        f"PIPELINE_DATA_DIR {data} is not a folder (it is a file); point PIPELINE_DATA_DIR "
        "at a folder (the datasets are read, or downloaded, there)",
    )
    nothing_created(stores)


# --- 4. a binary file as a space -----------------------------------------------------------


def test_a_binary_space_file_is_one_line(tiny_data, stores, tmp_path):
    space = tmp_path / "picture.yaml"
    space.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    invoke(
        ["search", "imdb", "--space", str(space)],
        f"{space}: not a text file (byte 0 is not UTF-8); a search space is a YAML file "
        "(search_spaces/ holds examples)",
    )
    nothing_created(stores)


# --- 5. reading a read-only store ----------------------------------------------------------

READERS = {
    "studies": (["studies"], "| imdb "),
    "export": (["export", "imdb"], "val_accuracy"),
    "predict": (["predict", "imdb", "a wonderful film"], "a wonderful film"),
    "datasets": (["datasets", "imdb"], "| imdb "),
}


@pytest.mark.parametrize("command", list(READERS))
def test_a_read_only_store_can_be_read(searched, searched_env, command):
    args, shown = READERS[command]
    before = sorted(p.name for p in searched_env.iterdir())
    with read_only(searched_env) as (prefix, _):
        done = pipeline(*args, prefix=prefix)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and shown in done.stdout
    assert sorted(p.name for p in searched_env.iterdir()) == before


# --- 6. a tracking server that is not there ------------------------------------------------


SERVER_COMMANDS = {
    "predict": ["predict", "imdb", "a wonderful film"],
    "search": ["search", "imdb", "--n-trials", "1"],
    "export": ["export", "imdb"],
    "delete-study": ["delete-study", "imdb", "--yes"],
}


@pytest.mark.parametrize("command", list(SERVER_COMMANDS))
def test_an_unreachable_tracking_server_is_one_line_within_seconds(searched, searched_env, command):
    url = f"http://127.0.0.1:{_free_port()}"  # a port nobody listens on
    args = [*SERVER_COMMANDS[command], "--tracking-uri", url]
    if command == "search":
        args += ["--space", str(searched / "tiny.yaml")]
    before = (searched_env / "optuna.db").read_bytes()
    start = time.monotonic()
    done = pipeline(*args)
    elapsed = time.monotonic() - start
    one_line(
        done,
        f"cannot reach the MLflow tracking server at {url}: Failed to establish a new "
        "connection: [Errno 111] Connection refused; start it (mlflow server ...) or check "
        "--tracking-uri / MLFLOW_TRACKING_URI",
    )
    assert elapsed < 20, f"{elapsed:.1f} s"
    assert (searched_env / "optuna.db").read_bytes() == before  # the study is untouched
