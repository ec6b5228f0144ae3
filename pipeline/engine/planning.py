"""Plans from what a user asked for: every check happens here, once, before anything is
created; the runner and the workers then trust the plan."""

from __future__ import annotations

import importlib.util
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline import backends, builders, datasets, locks, metrics, params, settings, spaces, tables
from pipeline.datasets.text import OUTPUT_MODES
from pipeline.engine import studies, workers
from pipeline.engine.plan import (
    Known,
    Plan,
    RayOptions,
    SpaceTrials,
    Stores,
    TableTrials,
    TrainPlan,
)
from pipeline.errors import UserError

WARM_START_TRIALS = 5  # `--warm-start study:NAME` tries that study's best five first
MAX_SEEDS = 1_000  # reproduce's grid lists every (row, seed) pair up front


@dataclass(frozen=True)
class SearchOptions:
    """`pipeline search`'s options, as typed (None: the default)."""

    dataset: str
    space: str | Path | None = None
    n_trials: int = 30
    timeout: float | None = 600
    study: str | None = None
    sampler: str = "tpe"
    pruner: str = "median"
    seed: int = 0
    storage: str | None = None
    tracking_uri: str | None = None
    verbose: bool = False
    workers: int = 1
    heartbeat: int = 10
    objective: str | None = None  # "accuracy" (or "mae"), or two: "accuracy,params|latency"
    warm_start: tuple[str, ...] = ()  # seed tables, or study:NAME (its best trials)
    csv: datasets.CsvOptions | None = None  # how to read a csv: dataset
    backend: str | None = None  # Keras' backend (None: KERAS_BACKEND, else TensorFlow)
    builder: Callable | None = None  # a custom space's build function, given from Python
    ray: RayOptions | None = None  # `--ray ADDRESS`: workers placed by Ray
    store_wait: float | None = None  # seconds a store that went away is waited for


def search_plan(options: SearchOptions) -> Plan:
    """The study that `pipeline search` runs; its `--timeout` counts from now."""
    began = time.time()
    spec = datasets.resolve(options.dataset, options.csv)
    at_least_one("--n-trials", options.n_trials)
    at_least_one("--heartbeat", options.heartbeat)
    timeout = options.timeout
    if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
        raise UserError(f"--timeout must be a positive number of seconds, got {timeout}")
    check_seed(options.seed)
    settings.check_tracking_uri(settings.tracking_uri(options.tracking_uri))
    space = load_space(spec, options.space, options.builder)
    path = space.path
    if "embedding" in space.families() and spec.task == "regression":
        raise UserError(f"{path}: the embedding family needs a text dataset")
    backend = backends.chosen(options.backend)
    check_ray(options.ray)
    check_builder(space, spec, backend)
    objectives = metrics.parse_objectives(spec.task, options.objective)
    stores = _stores(options.storage, options.tracking_uri, options.workers, options.store_wait)
    known = known_configs(spec, space, options.sampler, options.warm_start, stores.storage)
    trials = SpaceTrials(space, options.sampler, options.pruner, options.seed, known)
    name = options.study or spec.name
    plan = Plan(
        name,
        spec,
        trials,
        options.n_trials,
        stores,
        objectives,
        timeout=options.timeout,
        deadline=None if options.timeout is None else began + options.timeout,
        workers=options.workers,
        heartbeat=options.heartbeat,
        verbose=options.verbose,
        backend=backend,
        ray=options.ray,
        parent_params={
            "dataset": spec.name,
            "space": str(path),
            "n_trials": options.n_trials,
            "timeout": options.timeout,
            "seed": options.seed,
            "storage": settings.mask(stores.storage),
            "warm_start": ",".join(options.warm_start) or "defaults",
        }
        | ({"builder": space.builder.describe()} if space.builder else {}),
    )
    studies.make_sampler(plan)  # a bad sampler or pruner fails before the study exists
    studies.make_pruner(plan.pruner, trials.warmup_epochs)
    return plan


def reproduce_plan(
    table: str,
    seeds: int = 3,
    study: str | None = None,
    storage: str | None = None,
    tracking_uri: str | None = None,
    verbose: bool = False,
    n_workers: int = 1,
    backend: str | None = None,
    ray: RayOptions | None = None,
    store_wait: float | None = None,
) -> Plan:
    """A grid study that trains every row of a seed table `seeds` times."""
    specs: dict[str, datasets.Spec] = {}

    def task_of(name: str) -> str:
        return specs.setdefault(name, datasets.resolve(name)).task

    path = tables.resolve(table, settings.search_spaces_dir() / "tables")
    seed_table = tables.load(path, task_of)
    if not 1 <= seeds <= MAX_SEEDS:
        raise UserError(f"--seeds must be between 1 and {MAX_SEEDS}, got {seeds}")
    settings.check_tracking_uri(settings.tracking_uri(tracking_uri))
    spec = specs.get(seed_table.dataset) or datasets.resolve(seed_table.dataset)
    backend = backends.chosen(backend)
    if seed_table.space is not None:
        check_builder(seed_table.space, spec, backend)
    trials = TableTrials(seed_table, seeds)
    plan = Plan(
        study or f"reproduce-{seed_table.name}",
        spec,
        trials,
        len(seed_table.rows) * seeds,
        _stores(storage, tracking_uri, n_workers, store_wait),
        (metrics.task_metric(spec.task),),
        workers=n_workers,
        verbose=verbose,
        backend=backend,
        ray=check_ray(ray),
        parent_params={
            "table": seed_table.name,
            "dataset": spec.name,
            "seeds": seeds,
            "rows": len(seed_table.rows),
        },
    )
    return plan


def known_configs(
    spec: datasets.Spec,
    space: spaces.Space,
    sampler: str,
    warm_start: tuple[str, ...],
    storage: str,
) -> tuple[Known, ...]:
    """What a study tries first: the space's defaults (the seed recipe), its `warm_start`
    entries, then each `--warm-start`: a seed table's rows, or `study:NAME`'s best trials.
    None with the grid sampler, which tries its own points."""
    if sampler == "grid":
        if warm_start:
            raise UserError("--warm-start needs the tpe or random sampler, not grid")
        return ()
    configs = [(studies.RECIPE, dict(space.defaults))]
    configs += [(f"warm_start[{i}]", c) for i, c in enumerate(space.warm_start, 1)]
    for name in warm_start:
        if name.startswith("study:"):
            continue
        table = tables.load(
            tables.resolve(name, settings.search_spaces_dir() / "tables"),
            lambda dataset: datasets.resolve(dataset).task,
        )
        if table.dataset != spec.name:
            raise UserError(f"--warm-start {name}: a table of {table.dataset}, not {spec.name}")
        configs += [
            (f"{table.name} row {r.index}", {**space.defaults, **r.params}) for r in table.rows
        ]
    known = [_known(space, source, config) for source, config in configs]
    for name in (w.removeprefix("study:") for w in warm_start if w.startswith("study:")):
        for t in studies.best_trials_of(storage, name, WARM_START_TRIALS):
            known.append(Known(f"study {name} trial {t.number}", params.restrict(space, t.params)))
    return tuple(known)


def _known(space: spaces.Space, source: str, config: dict[str, Any]) -> Known:
    config = params.for_family(dict(config))
    if "units" in config:  # a custom builder's space may have none
        config["units"] = params.layer_units(config)
        config["n_layers"] = len(config["units"])
    return Known(source, params.trial_params(space, config), config)


def train_plan(
    dataset: str,
    overrides: dict[str, Any],
    space: str | Path | dict | None = None,
    seed: int = 0,
    tracking_uri: str | None = None,
    verbose: bool = False,
    csv: datasets.CsvOptions | None = None,
    backend: str | None = None,
    builder: Callable | None = None,
) -> TrainPlan:
    """One configuration: the space's defaults (the seed recipe) with `overrides`."""
    spec = datasets.resolve(dataset, csv)
    check_seed(seed)
    settings.check_tracking_uri(settings.tracking_uri(tracking_uri))
    base = load_space(spec, space, builder)
    defaults = dict(base.defaults)
    if base.is_custom:  # the values fixed under `search`, and no key of the builder unset
        defaults |= {p.name: p.value for p in base.params if p.kind == "fixed"}
        unset = [p.name for p in base.params if p.name not in defaults | overrides]
        if unset:
            raise UserError(
                f"{base.path}: {unset[0]} has no default; set {unset[0]}=VALUE "
                "or give it one under defaults"
            )
    config = spaces.configuration("arguments", "", defaults, overrides, spec.task, base.keys)
    values = params.for_family(config)
    uri = settings.tracking_uri(tracking_uri)
    locks.check_writable(uri, "--tracking-uri")
    backend = backends.chosen(backend)
    check_builder(base, spec, backend, values)
    return TrainPlan(spec, values, seed, uri, verbose, backend, base.builder)


def load_space(
    spec: datasets.Spec, space: str | Path | dict | None, builder: Callable | None = None
) -> spaces.Space:
    """`--space` (a file, a name in search_spaces/, or from Python a dict), validated for
    the dataset; `builder`: a custom space's function, given from Python."""
    if builder is not None and space is None:
        raise UserError("builder= needs a space of your own: space={...} or a YAML file")
    if isinstance(space, dict):
        loaded = spaces.parse(space, "(space)", spec.task, builder)
    else:
        loaded = spaces.load(find_space(spec, space), spec.task, builder)
    if loaded.dataset and loaded.dataset != spec.name:
        raise UserError(f"{loaded.path}: written for dataset {loaded.dataset!r}, not {spec.name!r}")
    return loaded


def check_builder(
    space: spaces.Space, spec: datasets.Spec, backend: str, config: dict | None = None
) -> None:
    """A custom space's builder, built once on its defaults (or `config`) before anything
    is created: a file that does not import, a missing function, a build that raises or
    an output that does not fit the task is one line naming the builder."""
    if space.builder is None:
        return
    representation = space.defaults["representation"]
    if (representation == "table") != spec.is_table:
        raise UserError(
            f"{space.path}: representation: {representation} does not fit {spec.name}, "
            f"a {spec.kind} dataset"
        )
    backends.start(backend)  # before the user's code imports Keras
    from pipeline import models  # deferred: Keras

    try:
        function = space.builder.load()
    except UserError as error:
        raise UserError(f"{space.path}: builder {error}") from None
    values = dict(config or probe(space))
    what = "this configuration" if config else "the defaults"
    sparse = representation in OUTPUT_MODES and backends.takes_sparse_input()
    backends.devices()  # TensorFlow: memory growth on, so the workers find the GPU free
    try:
        models.build_model(
            values, spec.task, _n_features(spec, values), spec.n_classes, sparse, function
        )
    except Exception as error:
        raise UserError(
            f"{space.path}: builder {space.builder.name} cannot build {what}: "
            f"{builders.one_line(error)}"
        ) from None
    finally:
        models.keras.backend.clear_session()


def probe(space: spaces.Space) -> dict[str, Any]:
    """The defaults, with one value of each key that only `search` declares (its fixed
    value, its low end, or its first choice): what a custom builder is checked with."""
    values = dict(space.defaults)
    for p in space.params:
        if p.name not in values and not p.per_layer:
            values[p.name] = p.value if p.kind == "fixed" else p.choices[0] if p.choices else p.low
    return values


def _n_features(spec: datasets.Spec, values: dict[str, Any]) -> int:
    """The width of the input a builder is checked with: the sequence length, the largest
    vocabulary, or the table's encoded columns."""
    if spec.is_table:
        return datasets.load_dataset(spec).n_features
    text = params.data_options(values).text
    return text.sequence_length if text.output_mode == "int" else text.max_tokens


def find_space(spec: datasets.Spec, space: str | Path | None) -> Path:
    """`--space`: a file, or a name in search_spaces/; by default the dataset's own, else
    the generic one of its kind (text or table)."""
    folder = settings.search_spaces_dir()
    if space is None:
        found = [spaces.resolve(name, folder) for name in spec.default_spaces]
        path = next((p for p in found if p.is_file()), found[-1])
    else:
        path = spaces.resolve(str(space), folder)
    if not path.is_file():
        raise UserError(f"search space {path} not found")
    return path


def check_ray(options: RayOptions | None) -> RayOptions | None:
    """`--ray` and its shares of the cluster; Ray itself is reached when the plan runs."""
    if options is None:
        return None
    if not options.address.strip():
        raise UserError("--ray needs an address: local, auto, HOST:PORT or ray://HOST:PORT")
    cpus, gpus = options.cpus_per_worker, options.gpus_per_worker
    if cpus is not None and not (math.isfinite(cpus) and cpus > 0):
        raise UserError(f"--cpus-per-worker must be a positive number, got {cpus}")
    if not (math.isfinite(gpus) and gpus >= 0):
        raise UserError(f"--gpus-per-worker must be 0 or more (0.25: four share a GPU), got {gpus}")
    if importlib.util.find_spec("ray") is None:
        raise UserError("--ray needs Ray: pip install 'pipeline[ray]' (make installs it)")
    return options


MAX_SEED = 2**31 - 1  # trial n trains with seed + n; numpy takes seeds below 2**32


def check_seed(seed: int) -> None:
    if not 0 <= seed <= MAX_SEED:
        raise UserError(f"--seed must be between 0 and {MAX_SEED}, got {seed}")


def at_least_one(option: str, value: int) -> None:
    if value < 1:
        raise UserError(f"{option} must be at least 1, got {value}")


def _stores(
    storage: str | None, tracking_uri: str | None, n_workers: int, wait: float | None = None
) -> Stores:
    urls = settings.storage_url(storage), settings.tracking_uri(tracking_uri)
    stores = Stores(*urls, wait=settings.store_wait(wait))
    locks.check_writable(stores.tracking, "--tracking-uri")  # a search writes to both
    locks.check_writable(stores.storage, "--storage")
    check_workers(stores.storage, n_workers)
    return stores


def check_workers(storage_url: str, n_workers: int) -> None:
    """SQLite serves a few local processes; on a network filesystem its locks are unsafe."""
    at_least_one("--workers", n_workers)
    database = settings.sqlite_path(storage_url)
    if n_workers == 1 or database is None:
        return
    folder = database.resolve().parent
    if n_workers > 8 or workers.on_network_filesystem(folder):
        raise UserError(
            f"{n_workers} workers on SQLite in {folder} are not safe (network "
            "filesystem or more than 8 workers); use --storage postgresql://..."
        )
