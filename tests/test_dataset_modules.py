"""A dataset is one module: declarations, Boston housing on the table path (unchanged from
before, to 1e-6), default spaces by kind, no dataset name outside its own module, and a
plugin package installed into a folder of the path, used by every command and worker."""

from __future__ import annotations

import ast
import importlib
import json
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from pipeline import datasets, seed_tables, settings
from pipeline.datasets import builtin, registry, tabular
from pipeline.datasets.builtin import boston_housing
from pipeline.engine import checks

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = Path(__file__).parent / "fixtures" / "boston_housing_v1.npz"  # before #27


@pytest.mark.realdata
def test_boston_housing_is_what_it_was_before_it_became_a_table(real_data):
    """Split, encoded features and labels of the loader before Boston went through the
    table path (saved from it), and the end-to-end model's encoding of the raw rows."""
    data = datasets.load_dataset("boston_housing")
    with np.load(FIXTURE) as before:
        assert (len(data.train), data.val, len(data.test), data.k_folds) == (404, None, 102, 4)
        for name, now in (("train", data.train), ("test", data.test)):
            np.testing.assert_allclose(now.x, before[f"x_{name}"], rtol=0, atol=1e-6)
            np.testing.assert_array_equal(now.y, before[f"y_{name}"])
        table = boston_housing.read_housing_data(real_data / "housing.data")
        encoding = datasets.fitted_for(datasets.spec_of("boston_housing")).table
        raw_test = table.features.iloc[before["test_rows"]]
        np.testing.assert_allclose(encoding.transform(raw_test), before["x_test"], atol=1e-6)
        old = tabular.Encoding.from_json(json.loads(str(before["encoding"])))
        assert [c.name for c in encoding.columns] == [c.name for c in old.columns]


def _quoted_names(path: Path, names: list[str]) -> list[tuple[int, str]]:
    """String constants (not docstrings) in which a dataset name stands as a word."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
    }
    word = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, names)) + r")(?![\w-])")
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
        and word.search(node.value)
    ]


def _builtin_names() -> dict[str, str]:
    """The names the modules of pipeline/datasets/builtin/ declare, by module (a plugin
    installed in this environment is not one of them)."""
    found = {}
    for info in pkgutil.iter_modules(builtin.__path__):
        module = importlib.import_module(f"{builtin.__name__}.{info.name}")
        if isinstance(getattr(module, "DATASET", None), datasets.Declaration):
            found[info.name] = module.DATASET.name
    return found


def test_no_dataset_name_is_quoted_outside_its_own_module():
    modules = _builtin_names()
    assert modules and set(modules.values()) <= set(registry.declared())
    names = sorted(modules.values())
    found = {}
    for path in sorted((ROOT / "pipeline").rglob("*.py")):
        own = path.parent.name == "builtin" and path.stem in modules
        hits = [] if own else _quoted_names(path, names)
        if hits:
            found[str(path.relative_to(ROOT))] = hits
    assert found == {}


def test_the_name_check_finds_a_quoted_name(tmp_path):
    """The scan above is not blind: each way of testing a name is found."""
    source = tmp_path / "bad.py"
    source.write_text(
        '"""Docs may say imdb."""\n'
        'def f(spec):\n    """reuters too."""\n'
        '    a = spec.name == "imdb"\n    b = spec.name in ("x", "reuters")\n'
        '    c = spec.name.startswith("boston_housing")\n    d = {"imdb": 1}\n'
        '    e = "blog-imdb"\n    return "imdb, reuters or csv:PATH"\n'
    )
    lines = [line for line, _ in _quoted_names(source, ["imdb", "reuters", "boston_housing"])]
    assert sorted(lines) == [4, 5, 6, 7, 9]


def test_a_declaration_is_checked_once_with_every_problem_named():
    with pytest.raises(ValueError) as error:
        datasets.Declaration(
            name="My Data",
            task="ranking",
            source=datasets.Archive("x.csv", "https://example.org/x.csv"),
            options=("colour",),
        )
    message = str(error.value)
    for part in ("lower_case", "task 'ranking'", "either texts= or table=", "'colour'"):
        assert part in message


def test_a_users_space_file_replaces_the_shipped_file_of_its_name_only(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # search_spaces/ of the working directory is the user's
    folder = Path("search_spaces")
    (folder / "tables").mkdir(parents=True)
    for klass in ("pos", "neg"):
        (tmp_path / "texts" / klass).mkdir(parents=True)
        (tmp_path / "texts" / klass / "a.txt").write_text("some words")
    for name in ("text", "boston_housing", "tables/blog-imdb"):
        (folder / f"{name}.yaml").write_text("defaults: {}\n")
    shipped = settings.packaged_spaces()
    boston = datasets.spec_of("boston_housing")
    assert checks.find_space(boston, None) == folder / "boston_housing.yaml"
    assert checks.find_space(datasets.spec_of("imdb"), None) == shipped / "imdb.yaml"
    texts = datasets.spec_of(f"folder:{tmp_path / 'texts'}")
    assert checks.find_space(texts, None) == folder / "text.yaml"
    assert checks.find_space(boston, "imdb-wide") == shipped / "imdb-wide.yaml"
    assert seed_tables.table_path("blog-imdb") == folder / "tables/blog-imdb.yaml"
    assert seed_tables.table_path("book-boston") == shipped / "tables/book-boston.yaml"
    (folder / "boston_housing.yaml").unlink()
    assert checks.find_space(boston, None) == shipped / "boston_housing.yaml"
    assert (shipped / "boston_housing.yaml").is_file()


# --- a plugin package -------------------------------------------------------------------------

PLUGIN = '''
"""A dataset plugin: one bundled table of two classes."""
from pipeline.datasets import Bundled, Declaration, read_csv_table


def read(path):
    return read_csv_table(path, label_col="label", task="binary")


DATASET = Declaration(
    name="toy_table",
    task="binary",
    source=Bundled("toy_plugin", "rows.csv"),
    table=read,
    k_folds=0,  # a held-out validation split: one fit a trial
)
'''


def _install(site: Path, distribution: str, version: str, module: str, code: str, entry: str):
    """A distribution as pip installs it: the package and its .dist-info with entry points."""
    (site / module).mkdir(parents=True)
    (site / module / "__init__.py").write_text(code)
    info = site / f"{distribution.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n"
    )
    (info / "entry_points.txt").write_text(f"[pipeline.datasets]\n{entry}\n")
    (info / "RECORD").write_text("")


@pytest.fixture
def plugin_site(tmp_path) -> Path:
    site = tmp_path / "site"
    _install(site, "toy-plugin", "0.3", "toy_plugin", PLUGIN, "toy_table = toy_plugin:DATASET")
    rng = np.random.RandomState(0)
    x = rng.normal(size=(120, 3)).round(3)
    label = np.where(x[:, 0] + 0.5 * x[:, 1] > 0, "yes", "no")
    rows = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "label": label})
    rows.to_csv(site / "toy_plugin" / "rows.csv", index=False)
    broken = 'raise ImportError("needs libfoo, which is not installed")\n'
    _install(site, "broken-plugin", "1.0", "broken_plugin", broken, "broken = broken_plugin")
    return site


def _pipeline(site: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **env, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )


@pytest.mark.slow
def test_a_plugin_dataset_is_listed_searched_by_two_workers_and_served(
    plugin_site, stores, tiny_data, tmp_path
):
    env = {"MLFLOW_TRACKING_URI": stores["tracking"], "PIPELINE_STORAGE": stores["storage"]}
    listed = _pipeline(plugin_site, env, "datasets", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert set(rows) == {"boston_housing", "imdb", "reuters", "toy_table"}
    assert rows["toy_table"]["from"] == "toy-plugin==0.3"
    assert rows["toy_table"]["source"] == "bundled with toy_plugin"
    toy = rows["toy_table"]
    assert (toy["n_train"], toy["n_val"], toy["n_test"]) == (77, 19, 24)  # k_folds=0
    warnings = [line for line in listed.stderr.splitlines() if "broken" in line]
    assert len(warnings) == 1 and "broken-plugin==1.0" in warnings[0]
    assert "needs libfoo" in warnings[0] and "Traceback" not in listed.stderr

    searched = _pipeline(
        plugin_site, env, "search", "toy_table", "--n-trials", "2", "--workers", "2"
    )
    assert searched.returncode == 0, searched.stderr
    _, trials = _runs(stores["tracking"], "toy_table")
    assert len(trials) == 2 and len({t.data.tags["worker_pid"] for t in trials}) == 2
    assert {t.data.params["epochs"] for t in trials} >= {"80"}  # table.yaml's recipe first
    uri = "models:/toy_table@champion"
    mlflow.set_tracking_uri(stores["tracking"])
    requirements = Path(mlflow.pyfunc.get_model_dependencies(uri)).read_text()
    assert "toy-plugin==0.3" in requirements.splitlines()

    rows_file = tmp_path / "new.csv"
    new = pd.DataFrame({"a": [2.0, -2.0], "b": [1.0, -1.0], "c": [0.0, 0.0]})
    new.to_csv(rows_file, index=False)
    predicted = _pipeline(plugin_site, env, "predict", "toy_table", "--file", str(rows_file))
    assert predicted.returncode == 0, predicted.stderr
    assert re.search(r"\byes\b.*\n.*\bno\b", predicted.stdout), predicted.stdout


def _runs(uri: str, experiment: str):
    from tests.conftest import runs_of

    return runs_of(uri, experiment)
