"""The checks a plan makes, once, before anything is created: the space a job names, a
custom builder built on its defaults, the seed, the counts, Ray's options and the stores."""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline import backends, builders, datasets, hyperparameters, locks, params, settings, spaces
from pipeline.datasets.text import OUTPUT_MODES
from pipeline.engine import workers
from pipeline.engine.jobs import StoreOptions
from pipeline.engine.plan import RayOptions, Stores
from pipeline.errors import UserError


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


@dataclass(frozen=True)
class Probed:
    """What the plan-time build of a custom builder saw."""

    unread: tuple[str, ...] = ()  # keys of the space's own that the builder never read
    takes_hp: bool = False  # a Keras Tuner `build_model(hp)`
    asked: dict[str, Any] = field(default_factory=dict)  # its questions' defaults, by name


def check_builder(
    space: spaces.Space, spec: datasets.Spec, backend: str, config: dict | None = None
) -> Probed:
    """A custom space's builder, built once on its defaults (or `config`) before anything
    is created: a file that does not import, a missing function, a build that raises or
    an output that does not fit the task is one line naming the builder. Returns which of
    the space's own keys it left unread, and a Keras Tuner builder's questions."""
    if space.builder is None:
        return Probed()
    representation = space.defaults["representation"]
    only = spec.kind if spec.kind in ("table", "arrays") else None  # rows taken as they are
    if (only or representation in ("table", "arrays")) and representation != only:
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
    if hyperparameters.takes_hp(function):
        watched = hyperparameters.bind(function, hyperparameters.given_or_default(values))
    else:
        watched = ReadsWatched(function)
    try:
        models.build_model(
            values,
            task=spec.task,
            n_features=_n_features(spec, values),
            n_classes=spec.n_classes,
            sparse=sparse,
            builder=watched,
        )
    except Exception as error:
        raise UserError(
            f"{space.path}: builder {space.builder.name} cannot build {what}: "
            f"{builders.one_line(error)}"
        ) from None
    finally:
        models.keras.backend.clear_session()
    own = space.builder_keys
    if isinstance(watched, hyperparameters.BoundBuilder):
        asked = {name: default for name, (_, default) in watched.last.asked.items()}
        return Probed(unread=tuple(own), takes_hp=True, asked=asked)
    return Probed(unread=tuple(k for k in own if k not in watched.read))


class ReadsWatched:
    """A `build(params, inputs)` whose `params` note the keys it reads: a key of the space
    that no build reads is searched for nothing (the same network trained twice)."""

    def __init__(self, function: Callable) -> None:
        self.function, self.read = function, set()

    def __call__(self, params: dict, inputs: Any) -> Any:
        return self.function(_Noting(params, self.read), inputs)


class _Noting(dict):
    """A dict that adds each key read to `read` (all of them when it is walked whole)."""

    def __init__(self, values: dict, read: set) -> None:
        super().__init__(values)
        self._read = read

    def __getitem__(self, key):
        self._read.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self._read.add(key)
        return super().get(key, default)

    def __contains__(self, key) -> bool:
        self._read.add(key)
        return super().__contains__(key)

    def _all(self):
        self._read.update(super().keys())

    def __iter__(self):
        self._all()
        return super().__iter__()

    def keys(self):
        self._all()
        return super().keys()

    def items(self):
        self._all()
        return super().items()

    def values(self):
        self._all()
        return super().values()

    def copy(self):
        self._all()
        return dict(self)


def probe(space: spaces.Space) -> dict[str, Any]:
    """The defaults, with one value of each key that only `search` declares (its fixed
    value, its low end, or its first choice): what a custom builder is checked with."""
    values = dict(space.defaults)
    for p in space.params:
        if p.name not in values and not p.per_layer:
            values[p.name] = p.value if p.kind == "fixed" else p.choices[0] if p.choices else p.low
    return values


def _n_features(spec: datasets.Spec, values: dict[str, Any]) -> int | tuple[int, ...]:
    """The width of the input a builder is checked with: the sequence length, the largest
    vocabulary, the table's encoded columns, or the shape of one of the arrays' rows."""
    if spec.kind == "arrays":
        return spec.source.row_shape
    if spec.is_table:
        return datasets.load_dataset(spec).n_features
    text = params.data_options(values).text
    return text.sequence_length if text.output_mode == "int" else text.max_tokens


def find_space(spec: datasets.Spec, space: str | Path | None) -> Path:
    """`--space`: a file, or a name in search_spaces/; by default the dataset's own, else
    the generic one of its kind (text or table)."""
    if space is None:
        found = [settings.find_space_file(f"{name}.yaml") for name in spec.default_spaces]
        path = next((p for p in found if p.is_file()), found[-1])
    else:
        path = spaces.space_path(str(space), settings.find_space_file)
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


def at_least_zero(option: str, value: int) -> None:
    if value < 0:
        raise UserError(f"{option} must be at least 0, got {value}")


def stores(options: StoreOptions, n_workers: int) -> Stores:
    """The stores a job writes to, both writable, and safe for `n_workers` processes."""
    stores = Stores(
        storage=settings.storage_url(options.storage),
        tracking=settings.tracking_uri(options.tracking_uri),
        wait=settings.store_wait(options.store_wait),
    )
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
