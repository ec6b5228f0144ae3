"""Property-based tests: generated inputs end in a valid plan or one UserError, never in
another exception. Nothing trains: each stops where the plan is built or the table read.

`make test` runs the "ci" profile (derandomized, a fixed number of examples, under a
minute in all); `make fuzz` runs the "fuzz" profile, ten times as many, freshly random.
"""

from __future__ import annotations

import csv
import math
import re
import tempfile
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
import optuna
import pytest
import yaml
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from pipeline import datasets, engine, params, spaces
from pipeline.cli import app
from pipeline.cli.searching import parse_assignments
from pipeline.datasets import user
from pipeline.engine import planner, studies
from pipeline.engine.plan import SpaceTrials
from pipeline.errors import UserError

optuna.logging.set_verbosity(optuna.logging.ERROR)
SCRATCH = Path(tempfile.mkdtemp(prefix="pipeline-fuzz-"))  # one folder for every example
TASK_OF = {"imdb": "binary", "reuters": "multiclass", "boston_housing": "regression"}


def fails_cleanly(call, *args, **kwargs):
    """The call's result, or None when it raised a UserError (a one-line message)."""
    try:
        result = call(*args, **kwargs)
    except UserError as error:
        assert str(error).strip(), "an empty message"
        event(f"{call.__name__}: UserError")
        return None
    event(f"{call.__name__}: ok")  # --hypothesis-show-statistics counts both ends
    return result


# --- values ----------------------------------------------------------------------------

NAMED = sorted({str(c) for choices in spaces.NAMED_CHOICES.values() for c in choices})
ODD_TEXT = st.text(  # unicode, control characters, quotes, spaces; no NUL (argv cannot hold one)
    st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\x00"),
    max_size=12,
)
ATOMS = st.one_of(
    st.integers(-3, 300),
    st.integers(),
    st.floats(),  # nan, inf, -0.0, 1e308
    st.booleans(),
    st.none(),
    st.sampled_from(NAMED),
    ODD_TEXT,
    st.lists(st.integers(-2, 64), max_size=4),
)


@st.composite
def rarely(draw, usual: st.SearchStrategy, odd: st.SearchStrategy) -> object:
    """Mostly `usual`, one time in ten `odd`: inputs close enough to valid that many
    pass, and the ones that do not fail in every way one field can."""
    return draw(odd if draw(st.integers(0, 9)) == 9 else usual)


PLAUSIBLE_INTS = {
    "n_layers": (1, 4),
    "epochs": (1, 40),
    "batch_size": (1, 512),
    "max_tokens": (2, 20_000),
    "sequence_length": (1, 400),
    "embedding_dim": (1, 64),
    "early_stopping_patience": (0, 5),
}


def plausible(name: str, task: str | None = None) -> st.SearchStrategy:
    """Values a user would write for `name` (for a dataset of `task`)."""
    if name == "loss" and task:
        return st.sampled_from(spaces.TASK_LOSSES[task])
    if name in spaces.NAMED_CHOICES:
        return st.sampled_from(list(spaces.NAMED_CHOICES[name]))
    if name == "units":
        return st.one_of(st.integers(1, 64), st.lists(st.integers(1, 64), min_size=1, max_size=4))
    if name == "encoder":
        return st.sampled_from(["https://tfhub.dev/x/1", str(SCRATCH)])
    if name in spaces.FLOATS:
        return st.floats(1e-5, 0.9)
    return st.integers(*PLAUSIBLE_INTS[name])


def value_of(name: str, task: str | None = None) -> st.SearchStrategy:
    return rarely(plausible(name, task), ATOMS)


@st.composite
def search_entry(draw, name: str, task: str | None = None) -> dict | object:
    """A `search:` entry: a fixed value, {value: ...}, a range or a list of choices."""
    shape = draw(st.sampled_from(["range", "range", "choices", "fixed", "value"]))
    if shape == "fixed":
        return draw(value_of(name, task))
    if shape == "value":
        return {"value": draw(value_of(name, task))}
    if shape == "choices" or name not in {*PLAUSIBLE_INTS, *spaces.FLOATS, "units"}:
        choices = draw(rarely(st.lists(value_of(name, task), min_size=1, max_size=4), ATOMS))
        return {"type": "categorical", "choices": choices}
    kind = "float" if name in spaces.FLOATS else "int"
    usual = st.integers(1, 64) if name == "units" else plausible(name, task)
    low = draw(rarely(usual, ATOMS))
    entry = {"type": draw(rarely(st.just(kind), ATOMS)), "low": low}
    wide = isinstance(low, int | float) and not isinstance(low, bool)
    entry["high"] = draw(rarely(st.just(low * 2 + 1) if wide else usual, ATOMS))
    for key, value in (("step", rarely(st.just(1), ATOMS)), ("log", st.booleans())):
        if draw(st.integers(0, 4)) == 0:
            entry[key] = draw(value)
    if name == "units" and draw(st.booleans()):
        entry["per_layer"] = True
    return entry


NAMES = st.sampled_from(spaces.PARAMS)
ODD_KEYS = rarely(NAMES, st.one_of(ODD_TEXT, st.integers(-2, 2)))


@st.composite
def configs(draw, task: str | None = None, most: int = 6) -> dict:
    names = draw(st.lists(ODD_KEYS, max_size=most, unique=True))
    return {n: draw(value_of(n, task) if n in spaces.PARAMS else ATOMS) for n in names}


@st.composite
def space_documents(draw, task: str | None) -> dict:
    doc = {}
    required = {k: plausible(k, task) for k in spaces.REQUIRED}
    doc["defaults"] = draw(configs(task)) | draw(st.fixed_dictionaries(required))
    searched = draw(st.lists(ODD_KEYS, max_size=4, unique=True))
    doc["search"] = {
        n: draw(search_entry(n, task) if n in spaces.PARAMS else ATOMS) for n in searched
    }
    if draw(st.integers(0, 3)) == 0:
        doc["warm_start"] = draw(rarely(st.lists(configs(task, 2), max_size=3), ATOMS))
    if draw(st.integers(0, 7)) == 0:
        doc[draw(st.sampled_from(["dataset", "description", "extra", "Search"]))] = draw(ATOMS)
    return draw(rarely(st.just(doc), ATOMS))


def damaged(text: str, cut: int, junk: str) -> str:
    """YAML as a hurried editor leaves it: cut short, something pasted in."""
    at = cut % (len(text) + 1)
    return text[:at] + junk + text[at:]


# --- search spaces -----------------------------------------------------------------------


@given(
    dataset=st.sampled_from([*TASK_OF, None]),
    sampler=st.sampled_from(["tpe", "random", "grid"]),
    damage=rarely(st.none(), st.tuples(st.integers(0, 10_000), ODD_TEXT)),
    data=st.data(),
)
def test_a_space_document_is_a_space_whose_every_trial_is_a_valid_configuration(
    dataset, sampler, damage, data
):
    doc = data.draw(space_documents(TASK_OF.get(dataset)), label="doc")
    text = yaml.safe_dump(doc, allow_unicode=True)
    if damage:
        text = damaged(text, *damage)
    path = SCRATCH / "space.yaml"
    path.write_text(text, encoding="utf-8")
    task = TASK_OF.get(dataset)
    space = fails_cleanly(spaces.load, path, task)
    if space is None or dataset is None:
        return
    spec = datasets.spec_of(dataset)
    known = fails_cleanly(planner.known_configs, spec, space, sampler, (), "sqlite://")
    if known is None:
        return
    trials = SpaceTrials(space, sampler, "median", 0, known)
    grid = fails_cleanly(params.grid, space) if sampler == "grid" else {}
    if grid is None:
        return
    study = optuna.create_study(
        sampler=optuna.samplers.GridSampler(grid, seed=0)
        if sampler == "grid"
        else optuna.samplers.RandomSampler(seed=0)
    )
    studies.enqueue(study, known)
    points = math.prod(len(v) for v in grid.values()) if grid else math.inf
    for _ in range(min(len(known) + 2, points)):  # a spent grid stops the study
        trial = study.ask()
        config = trials.params_of(trial)
        # what trains: a whole configuration, which the same validation accepts
        spaces.configuration("sampled", "", {}, config, task)
        assert (
            len(params.layer_units(config)) == config.get("n_layers", 1) or "n_layers" not in config
        )


# --- custom spaces: keys of the user's own ---------------------------------------------

OWN_NAMES = rarely(st.sampled_from(["filters", "kernel_size", "width", "rate"]), ODD_KEYS)


@st.composite
def own_entry(draw) -> object:
    """A search entry of a key of the user's: a range, choices or a fixed value."""
    low = draw(st.one_of(st.integers(-3, 64), st.floats(-1, 10)))
    kind = draw(st.sampled_from(["int", "float", "categorical", "fixed"]))
    if kind == "fixed":
        return draw(ATOMS)
    if kind == "categorical":
        return {"type": "categorical", "choices": draw(st.lists(ATOMS, max_size=3))}
    entry = {"type": kind, "low": low, "high": draw(rarely(st.just(low + 4), ATOMS))}
    if draw(st.booleans()):
        entry["log"] = draw(rarely(st.booleans(), ATOMS))
    return draw(rarely(st.just(entry), ATOMS))


@st.composite
def custom_documents(draw) -> dict:
    required = {k: plausible(k, "binary") for k in spaces.CUSTOM_REQUIRED}
    own = draw(st.lists(OWN_NAMES, max_size=4, unique=True))
    doc = {
        "family": draw(rarely(st.just("custom"), ATOMS)),
        "builder": draw(rarely(st.just("model.py:build"), ATOMS)),
        "representation": draw(rarely(st.sampled_from(spaces.REPRESENTATIONS), ATOMS)),
        "defaults": {n: draw(ATOMS) for n in own} | draw(st.fixed_dictionaries(required)),
        "search": {n: draw(own_entry()) for n in draw(st.lists(OWN_NAMES, max_size=3))},
    }
    return draw(rarely(st.just(doc), ATOMS))


@given(doc=custom_documents(), data=st.data())
def test_a_custom_space_declares_its_own_keys_and_every_trial_carries_them(doc, data):
    (SCRATCH / "model.py").write_text("def build(params, inputs):\n    return inputs\n")
    path = SCRATCH / "custom.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    space = fails_cleanly(spaces.load, path, "binary")
    if space is None:
        return
    assert space.builder.function == "build" and space.defaults["family"] == "custom"
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    config = params.suggest(study.ask(), space)
    own = [k for k in [*space.defaults, *space.names()] if k not in spaces.PARAMS]
    assert set(own) <= set(config)  # every key of the user's reaches the builder
    assert spaces.configuration("sampled", "", {}, config, "binary", space.keys) == config | {
        k: float(config[k]) for k in spaces.FLOATS if k in config
    }
    params.data_options(config)  # a representation the data loader takes


# --- train key=value lists -----------------------------------------------------------------

ODD_WRITTEN = st.one_of(
    st.integers().map(str),
    st.floats().map(repr),
    st.sampled_from(
        [
            "true",
            "no",
            "null",
            "~",
            ".inf",
            "-.nan",
            "1e-3",
            "16,32",
            "16, 32,",
            "[8, 8]",
            "{a: 1}",
            "2020-01-01",
            "!!python/object:os.system x",
            "'quoted'",
            "[",
            "]:",
            "&a x",
            "*a",
            "%x",
            "@",
            "`",
            "0x10",
            "1_000",
            "1e400",
            "-0",
        ]
    ),
    st.sampled_from(NAMED),
    ODD_TEXT,
)


def written(value) -> str:
    """A value as typed on a command line: 16,32 for a list."""
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


@st.composite
def assignments(draw, task: str) -> str:
    key = draw(ODD_KEYS)
    if not isinstance(key, str) or key not in spaces.PARAMS:
        return draw(rarely(st.just(f"{key}={draw(ODD_WRITTEN)}"), ODD_TEXT))  # or no "="
    return f"{key}={draw(rarely(plausible(key, task).map(written), ODD_WRITTEN))}"


@given(dataset=st.sampled_from(list(TASK_OF)), data=st.data())
def test_train_assignments_are_a_valid_configuration_or_one_error(dataset, data):
    pairs = data.draw(st.lists(assignments(TASK_OF[dataset]), max_size=4), label="pairs")
    overrides = fails_cleanly(parse_assignments, pairs)
    if overrides is None:
        return
    plan = fails_cleanly(planner.train_plan, engine.TrainJob(dataset=dataset, overrides=overrides))
    if plan is None:
        return
    values = plan.params
    again = spaces.configuration("plan", "", {}, values, TASK_OF[dataset])
    assert again == values
    assert all(type(values[k]) is float for k in spaces.FLOATS if k in values)
    units = params.layer_units(values)
    assert all(type(u) is int and u >= 1 for u in units)
    assert len(units) == values.get("n_layers", len(units))


# --- CSV tables ----------------------------------------------------------------------------

CELLS = {
    "number": st.floats(-1e6, 1e6).map(repr),
    "int": st.integers(-(10**20), 10**20).map(str),
    "small": st.integers(0, 3).map(str),
    "category": st.sampled_from(["red", "green", "blue", "Ölçü", "日本", "a b"]),
    "float": st.floats().map(repr),  # nan, inf, 1e308, 3.4028236e+38
    "text": st.lists(st.sampled_from(["good", "bad", "film", "é", "x"]), max_size=6).map(" ".join),
    "any": ODD_TEXT,
}
USUAL_CELLS = st.sampled_from(["number", "int", "small", "category"])
BLANK = st.sampled_from(["", " ", "NA", "nan", "?", "None"])
ODD_HEADERS = st.one_of(st.sampled_from(["label", "text", "a", "", " x ", "Größe"]), ODD_TEXT)


@st.composite
def csv_tables(draw) -> tuple[list[str], list[list[str]]]:
    kinds = draw(
        st.lists(rarely(USUAL_CELLS, st.sampled_from(list(CELLS))), min_size=1, max_size=5)
    )
    header = [draw(rarely(st.just(f"c{i}"), ODD_HEADERS)) for i in range(len(kinds))]
    n = draw(rarely(st.integers(20, 60), st.integers(0, 19)))
    blanks = draw(rarely(st.just(0.0), st.floats(0, 0.6)))
    rows = []
    for _ in range(n):
        rows.append(
            [draw(BLANK) if draw(st.floats(0, 1)) < blanks else draw(CELLS[k]) for k in kinds]
        )
    return header, rows


@given(
    table=csv_tables(),
    label_at=st.integers(0, 4),
    task=rarely(st.none(), st.sampled_from(["regression", "binary", "multiclass"])),
    k_folds=rarely(st.none(), st.sampled_from([0, 2, 4, 30])),
    in_query=st.booleans(),
)
def test_a_csv_table_reads_into_finite_numbers_or_one_error(
    table, label_at, task, k_folds, in_query
):
    header, rows = table
    path = SCRATCH / "table.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([header, *rows])
    label = header[label_at % len(header)]
    chosen = {"label": label, "task": task, "k_folds": k_folds}
    if in_query:  # csv:PATH?label=...&task=...
        query = urlencode({k: v for k, v in chosen.items() if v is not None})
        spec = fails_cleanly(datasets.spec_of, f"csv:{path}?{query}")
    else:
        options = datasets.CsvOptions(label_col=label, task=task, k_folds=k_folds)
        spec = fails_cleanly(datasets.spec_of, f"csv:{path}", options)
    if spec is None:
        return
    if not spec.is_table:  # a text dataset: its texts and labels are read, not vectorized
        names, parts = fails_cleanly(user.read_csv, spec.source) or (None, None)
        if names is not None:
            assert len(names) >= 2 and sum(len(p[0]) for p in parts.values()) >= 1
        return
    data = fails_cleanly(datasets.load_dataset, spec)
    if data is None:
        return
    for split in (data.train, data.val, data.test):
        if split is not None:
            assert np.isfinite(split.x).all(), "a feature that is not a finite number"
            assert np.isfinite(np.asarray(split.y, dtype=float)).all()
            assert len(split.x) == len(split.y) > 0
    if spec.task != "regression":
        assert len(spec.class_names) >= 2


# --- command options -----------------------------------------------------------------------

ODD_NUMBERS = st.one_of(st.integers(-3, 3), st.integers(-(2**70), 2**70))
DATASETS = st.one_of(
    st.sampled_from([*TASK_OF, "mnist", "", "csv:", "folder:", "csv:/nope.csv", "folder:/"]),
    ODD_TEXT,
)
STORES = st.sampled_from(
    ["sqlite:///" + str(SCRATCH / "o.db"), "foo://x", "sqlite:////nonexistent/o.db", ""]
)
TRACKING = st.sampled_from(["ftp://x", "file:" + str(SCRATCH / "m"), "x", ""])


@st.composite
def options(draw, usual: dict, odd: dict) -> dict:
    """Options as a user gives them: the usual values, and one or two odd ones (or none),
    so that both plans and errors are common."""
    names = draw(st.lists(st.sampled_from(sorted(odd)), max_size=2, unique=True))
    return {k: draw(odd[k] if k in names else usual[k]) for k in usual}


SEARCH_USUAL = {
    "dataset": st.sampled_from(list(TASK_OF)),
    "space": st.none(),
    "n_trials": st.integers(1, 100),
    "timeout": st.one_of(st.none(), st.floats(1, 10**6)),
    "study": st.one_of(st.none(), st.text(max_size=8)),
    "sampler": st.sampled_from(["tpe", "random", "grid"]),
    "pruner": st.sampled_from(["median", "hyperband", "none"]),
    "seed": st.integers(0, 2**31 - 1),
    "workers": st.integers(1, 4),
    "heartbeat": st.integers(1, 60),
    "objective": st.none(),
    "warm_start": st.just(()),
    "storage": st.just(None),
    "tracking_uri": st.just(None),
}
SEARCH_ODD = {
    "dataset": DATASETS,
    "space": st.sampled_from(["imdb-wide", "reuters", "text", "table", "nope", "/", ""]),
    "n_trials": ODD_NUMBERS,
    "timeout": st.one_of(st.floats(), st.integers(-5, 10**12)),
    "study": ODD_TEXT,
    "sampler": st.one_of(st.sampled_from(["cmaes", "TPE", ""]), ODD_TEXT),
    "pruner": st.one_of(st.sampled_from(["Median", ""]), ODD_TEXT),
    "seed": ODD_NUMBERS,
    "workers": st.integers(-1, 12),
    "heartbeat": ODD_NUMBERS,
    "objective": st.one_of(
        st.sampled_from(["accuracy", "mae", "accuracy,params", "mae,latency", ",", "loss"]),
        ODD_TEXT,
    ),
    "warm_start": st.lists(
        st.one_of(st.sampled_from(["blog-imdb", "book-boston", "study:x", "nope"]), ODD_TEXT),
        min_size=1,
        max_size=2,
    ).map(tuple),
    "storage": STORES,
    "tracking_uri": TRACKING,
}


@given(chosen=options(SEARCH_USUAL, SEARCH_ODD))
def test_search_options_make_a_plan_or_one_error(chosen):
    plan = fails_cleanly(planner.search_plan, engine.SearchJob(**chosen))
    if plan is None:
        return
    assert plan.n_trials >= 1 and plan.workers >= 1
    assert plan.timeout is None or (math.isfinite(plan.timeout) and plan.timeout > 0)
    assert plan.deadline is None or math.isfinite(plan.deadline)
    studies.make_sampler(plan, done=10**6, worker=8)  # a late worker's seed is a seed too


REPRODUCE_USUAL = {
    "table": st.sampled_from(["blog-imdb", "book-boston", "book-reuters"]),
    "seeds": st.integers(1, 5),
    "workers": st.integers(1, 4),
    "study": st.one_of(st.none(), st.text(max_size=8)),
    "storage": st.just(None),
    "tracking_uri": st.just(None),
}
REPRODUCE_ODD = {
    "table": st.one_of(st.sampled_from(["nope", "", "/", "tables/blog-imdb.yaml"]), ODD_TEXT),
    "seeds": ODD_NUMBERS,
    "workers": st.integers(-1, 12),
    "study": ODD_TEXT,
    "storage": STORES,
    "tracking_uri": TRACKING,
}


@given(chosen=options(REPRODUCE_USUAL, REPRODUCE_ODD))
def test_reproduce_options_make_a_plan_or_one_error(chosen):
    plan = fails_cleanly(planner.reproduce_plan, engine.ReproduceJob(**chosen))
    if plan is None:
        return
    assert plan.n_trials == len(plan.trials.table.rows) * chosen["seeds"] >= 1
    studies.make_sampler(plan)


runner = CliRunner()


@pytest.fixture(scope="module")
def empty_stores(tmp_path_factory):
    """Stores with nothing in them, shared by every example (the commands only read)."""
    folder = tmp_path_factory.mktemp("stores")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{folder}/mlflow.db")
        patch.setenv("PIPELINE_STORAGE", f"sqlite:///{folder}/optuna.db")
        yield folder


COMMANDS = {  # the commands that read the stores and train nothing, with options
    "export": ["DATASET", "--top", "NUMBER", "--format", "FORMAT", "--metric", "TEXT"],
    "studies": ["--storage", "STORE"],
    "delete-study": ["TEXT", "--yes", "--storage", "STORE"],
    "predict": ["DATASET", "TEXT", "--format", "FORMAT"],
    "datasets": ["DATASET"],
}
WORDS = {
    "DATASET": DATASETS,
    "NUMBER": ODD_NUMBERS.map(str),
    "FORMAT": st.sampled_from(["markdown", "csv", "json", "table", "xml", ""]),
    "TEXT": ODD_TEXT,
    "STORE": STORES,
}


@settings(max_examples=settings.default.max_examples // 8)  # a command costs ~0.25 s
@given(command=st.sampled_from(sorted(COMMANDS)), data=st.data())
def test_commands_that_read_the_stores_answer_in_one_line(empty_stores, command, data):
    words = [data.draw(WORDS[w]) if w in WORDS else w for w in COMMANDS[command]]
    assume(not any(w.startswith("-") and w not in COMMANDS[command] for w in words))
    result = runner.invoke(app, [command, *words])
    assert result.exit_code in (0, 2), (words, result.output, result.exception)
    if result.exit_code == 2:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (words, result.stderr)


# --- what fuzzing found, pinned (the derandomized CI run need not meet each again) --------

REQUIRED_DEFAULTS = {"units": 8, "loss": "mse", "epochs": 2, "batch_size": 16}
FOUND_SPACES = [  # (search:, sampler, the message)
    ({}, "grid", "the grid sampler needs at least one searched param"),
    ({"n_layers": {"type": "int", "low": 1, "high": 10**9}}, "grid", "1e+09 grid values"),
    ({"n_layers": {"type": "int", "low": 1, "high": 3, "step": -1}}, "tpe", "positive int"),
    ({"dropout": {"type": "float", "low": 0.1, "high": 0.5, "step": 0}}, "tpe", "positive"),
    (
        {"learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "step": 1e-3, "log": True}},
        "tpe",
        "a log scale takes no step",
    ),
    ({"units": {"type": "int", "low": 1, "high": [1]}}, "tpe", "expected int, got [1]"),
    ({"epochs": {"type": [], "low": 1, "high": 3}}, "tpe", "expected int, float or categorical"),
]


@pytest.mark.parametrize(("search_entries", "sampler", "message"), FOUND_SPACES)
def test_spaces_found_by_fuzzing_are_one_error(search_entries, sampler, message):
    def plan():
        raw = {"defaults": REQUIRED_DEFAULTS, "search": search_entries}
        space = spaces.parse(raw, "found.yaml", "regression")
        return params.grid(space) if sampler == "grid" else space

    with pytest.raises(UserError, match=re.escape(message)):
        plan()


FOUND_OPTIONS = [  # (SearchJob changes, the message)
    ({"timeout": math.nan}, "--timeout must be a positive number of seconds, got nan"),
    ({"timeout": math.inf}, "--timeout must be a positive number of seconds, got inf"),
    ({"seed": 2**40}, "--seed must be between 0 and 2147483647, got 1099511627776"),
]


@pytest.mark.parametrize(("changes", "message"), FOUND_OPTIONS)
def test_search_options_found_by_fuzzing_are_one_error(changes, message):
    with pytest.raises(UserError, match=re.escape(message)):
        planner.search_plan(engine.SearchJob(dataset="boston_housing", **changes))


def test_reproduce_seeds_are_bounded_before_the_grid_lists_them():
    with pytest.raises(UserError, match=re.escape("--seeds must be between 1 and 1000, got")):
        planner.reproduce_plan(engine.ReproduceJob(table="book-boston", seeds=10**12))


def test_train_values_found_by_fuzzing():
    with pytest.raises(UserError, match=re.escape('family=": cannot read the value')):
        parse_assignments(['family="'])
    # PyYAML reads 1e-3 as a string; a user means a number
    assert parse_assignments(["learning_rate=1e-3", "dropout=2.5E-1"]) == {
        "learning_rate": 0.001,
        "dropout": 0.25,
    }


FOUND_TABLES = [  # (header, a row's cells, label, the message)
    (["y"], ["1"], "y", "no feature columns besides the label 'y'"),
    (["x", "y"], ["1", "3.5e38"], "y", "column 'y': '3.5e38' is not a finite number"),
    (["x", "y"], ["inf", "1"], "y", "column 'x': 'inf' is not a finite number"),
]


@pytest.mark.parametrize(("header", "odd_row", "label", "message"), FOUND_TABLES)
def test_tables_found_by_fuzzing_are_one_error(tmp_path, header, odd_row, label, message):
    path = tmp_path / "found.csv"
    rows = [[str(i % 7), str(i * 1.5)][: len(header)] for i in range(30)] + [odd_row]
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    with pytest.raises(UserError, match=re.escape(message)):
        datasets.spec_of(f"csv:{path}", datasets.CsvOptions(label_col=label, task="regression"))
