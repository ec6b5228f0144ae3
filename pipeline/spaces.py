"""Search spaces: YAML files validated once into frozen types (`params.py` samples them)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from pipeline import builders
from pipeline.builders import Builder
from pipeline.datasets.text import OUTPUT_MODES
from pipeline.errors import UserError

TASK_LOSSES = {
    "binary": ("binary_crossentropy", "mse"),
    "multiclass": ("categorical_crossentropy", "sparse_categorical_crossentropy"),
    "regression": ("mse", "mae", "huber"),
}
LOSSES = tuple(sorted({loss for losses in TASK_LOSSES.values() for loss in losses}))
OPTIMIZERS = ("rmsprop", "adam", "sgd")
ACTIVATIONS = ("relu", "tanh", "elu", "selu", "gelu", "sigmoid")
FAMILIES = ("mlp", "embedding")  # built in; a space of `family: custom` names its builder
CUSTOM = "custom"
# what a custom space's builder receives: token ids, a bag of words, or a table's rows
REPRESENTATIONS = ("token_ids", *OUTPUT_MODES, "table")
FAMILY_PARAMS = {  # params only one model family uses; a trial of the other drops them
    "mlp": ("ngrams", "output_mode"),
    "embedding": ("sequence_length", "embedding_dim", "pooling", "encoder"),
}
NAMED_CHOICES = {
    "family": (*FAMILIES, CUSTOM),  # custom: set by a custom space, never under defaults
    "pooling": ("average", "max"),
    "loss": LOSSES,
    "optimizer": OPTIMIZERS,
    "activation": ACTIVATIONS,
    "output_mode": OUTPUT_MODES,
    "ngrams": (1, 2, 3),
    "with_title": (False, True),
}
REPRESENTATION = (  # the features
    "max_tokens",
    "ngrams",
    "output_mode",
    "with_title",
    "sequence_length",
    "encoder",
)
PARAMS = (
    "family",
    "embedding_dim",
    "pooling",
    "n_layers",
    "units",
    "activation",
    "dropout",
    "loss",
    "optimizer",
    "learning_rate",
    "epochs",
    "batch_size",
    "early_stopping_patience",
    *REPRESENTATION,
)
FLOATS = ("dropout", "learning_rate")
REQUIRED = ("units", "loss", "epochs", "batch_size")
CUSTOM_REQUIRED = ("loss", "epochs", "batch_size")  # a custom builder may need no units
DEFAULT_LOSS = {  # when a space leaves the loss out (a space for any text dataset)
    "binary": "binary_crossentropy",
    "multiclass": "sparse_categorical_crossentropy",
    "regression": "mse",
}
TOP_KEYS = ("dataset", "description", "defaults", "search", "warm_start")
CUSTOM_KEYS = ("family", "builder", "representation", "code")  # top level, custom spaces only
RANGES = {  # (low, high) of numeric params, both included except dropout's high
    "n_layers": (1, math.inf),
    "epochs": (1, math.inf),
    "batch_size": (1, math.inf),
    "max_tokens": (2, math.inf),
    "sequence_length": (1, math.inf),
    "embedding_dim": (1, math.inf),
    "dropout": (0.0, 1.0),
    "learning_rate": (math.ulp(0.0), math.inf),
}
RANGE_WORDS = {
    "n_layers": "at least 1",
    "epochs": "at least 1",
    "batch_size": "at least 1",
    "max_tokens": "at least 2",
    "sequence_length": "at least 1",
    "embedding_dim": "at least 1",
    "dropout": "0 <= dropout < 1",
    "learning_rate": "greater than 0",
    "early_stopping_patience": "at least 0",
}
KIND_KEYS = {
    "int": {"low", "high", "step", "log"},
    "float": {"low", "high", "step", "log"},
    "categorical": {"choices"},
}


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # "int" | "float" | "categorical" | "fixed"
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    choices: tuple = ()
    value: Any = None
    per_layer: bool = False  # units only: one value per existing hidden layer


@dataclass(frozen=True)
class Space:
    path: str
    dataset: str | None
    description: str
    defaults: MappingProxyType
    params: tuple[Param, ...]
    warm_start: tuple[dict, ...] = ()  # known configurations (defaults + changes) to try first
    builder: Builder | None = None  # a custom space's: the user's build function, carried

    def __reduce__(self):  # a MappingProxyType does not pickle: send a dict, wrap it again
        fields = (self.path, self.dataset, self.description, dict(self.defaults), self.params)
        return _space, (*fields, self.warm_start, self.builder)

    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def families(self) -> set[str]:
        """The model families its trials may use."""
        for p in self.params:
            if p.name == "family":
                return set(p.choices) if p.kind == "categorical" else {p.value}
        return {self.defaults.get("family", "mlp")}

    @property
    def is_custom(self) -> bool:
        return self.builder is not None

    @property
    def keys(self) -> tuple[str, ...]:
        """The keys a configuration of it may set: the project's, and a custom space's own
        (those its defaults or search declare)."""
        if not self.is_custom:
            return PARAMS
        own = [k for k in [*self.defaults, *self.names()] if k not in PARAMS]
        return PARAMS + tuple(dict.fromkeys(own))


def _space(path, dataset, description, defaults: dict, params, warm_start, builder) -> Space:
    return Space(
        path, dataset, description, MappingProxyType(defaults), params, warm_start, builder
    )


class _Loader(yaml.SafeLoader):
    """YAML 1.1 as PyYAML reads it, except that `1e-3` is a float (YAML 1.2 and every
    user agree; PyYAML wants `1.0e-3`): the one change, written here because PyYAML has
    no switch for it."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def read_yaml(text: str) -> Any:
    """A YAML document (a space, a table, a `key=value` word); yaml.YAMLError if malformed."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506  (a SafeLoader)


def _fail(path: Path | str, key: str, problem: str) -> UserError:
    return UserError(f"{path}: {key}: {problem}")


def load(path: Path | str, task: str | None = None, builder: Callable | None = None) -> Space:
    """Read and validate a space file; any problem is one UserError naming the file and key.
    `builder`: a function of the caller's for a custom space (from a notebook)."""
    path = Path(path)
    try:
        raw = read_yaml(path.read_text())
    except OSError as error:
        raise UserError(f"{path}: cannot read search space ({error.strerror})") from None
    except UnicodeDecodeError as error:  # a binary file given by mistake
        raise UserError(
            f"{path}: not a text file (byte {error.start} is not UTF-8); a search space is "
            "a YAML file (search_spaces/ holds examples)"
        ) from None
    except yaml.YAMLError as error:
        problem = str(error).replace("\n", " ")
        raise UserError(f"{path}: not valid YAML ({problem})") from None
    return parse(raw, path, task, builder)


def parse(
    raw: Any, path: Path | str, task: str | None = None, builder: Callable | None = None
) -> Space:
    if not isinstance(raw, dict):
        raise _fail(path, "(top level)", "expected a mapping with keys " + ", ".join(TOP_KEYS))
    reject_unknown(path, "(top level)", raw, TOP_KEYS + CUSTOM_KEYS)
    custom = _custom(raw, path, builder, task)
    known = None if custom else PARAMS  # a custom space declares keys of its own
    defaults = _mapping(path, "defaults", raw.get("defaults") or {}, known)
    search = _mapping(path, "search", raw.get("search") or {}, known)
    if custom:
        for key, mapping in (("defaults", defaults), ("search", search)):
            fixed = [k for k in ("family", "representation") if k in mapping]
            if fixed:
                raise _fail(
                    path,
                    f"{key}.{fixed[0]}",
                    "fixed at the top level of a custom space (custom is not mixed with "
                    "the mlp or embedding family in one space)",
                )
        defaults = {**defaults, "family": CUSTOM, "representation": custom[1]}
    elif CUSTOM in [defaults.get("family"), *_choices(search.get("family"))]:
        raise _fail(path, "family", "custom goes at the top level, with builder and representation")
    if task and "loss" not in defaults and "loss" not in search:
        defaults = {**defaults, "loss": DEFAULT_LOSS[task]}
    for name, value in defaults.items():
        _check_value(path, f"defaults.{name}", name, value, task)
    check_depth(path, "defaults", defaults)
    params = tuple(_param(path, name, spec, task) for name, spec in search.items())
    units = defaults.get("units")
    if "n_layers" in search and "units" not in search and isinstance(units, list) and units[1:]:
        raise _fail(path, "defaults.units", "one count per layer, but n_layers is searched")
    order = {"family": 0, "n_layers": 1}  # the family, then layers before units
    params = tuple(sorted(params, key=lambda p: order.get(p.name, 2)))
    keys = PARAMS + tuple(k for k in [*defaults, *search] if k not in PARAMS)  # declared
    required = CUSTOM_REQUIRED if custom else REQUIRED
    missing = [k for k in required if k not in defaults and k not in search]
    if missing:
        raise _fail(
            path, "defaults", f"missing {', '.join(missing)} (set it in defaults or search)"
        )
    return Space(
        str(path),
        raw.get("dataset"),
        str(raw.get("description", "")),
        MappingProxyType(dict(defaults)),
        params,
        _warm_start(path, raw.get("warm_start") or [], defaults, task, keys),
        custom[0] if custom else None,
    )


def _choices(spec: Any) -> list:
    """The values a search entry may take (its choices, or its fixed value)."""
    if isinstance(spec, dict):
        return list(spec.get("choices") or [spec.get("value")])
    return [spec]


def _custom(
    raw: dict, path, function: Callable | None, task: str | None
) -> tuple[Builder, str] | None:
    """A custom space's builder and representation (None for the built-in families): the
    file it names, read now, or `function`, a notebook's."""
    given = [k for k in CUSTOM_KEYS if k in raw]
    if function is None and "family" not in raw:
        if given:
            raise _fail(path, given[0], "for your own model only: add `family: custom`")
        return None
    if raw.get("family", CUSTOM) != CUSTOM:
        raise _fail(
            path,
            "family",
            f"at the top level only {CUSTOM!r} (your own builder); the built-in families "
            "go under defaults or search",
        )
    representation = raw.get("representation")
    if representation not in REPRESENTATIONS:
        problem = "missing" if representation is None else f"unknown {representation!r}"
        raise _fail(
            path, "representation", f"{problem}; expected one of {', '.join(REPRESENTATIONS)}"
        )
    code = raw.get("code") or []
    if not isinstance(code, list):
        raise _fail(path, "code", "expected a list of .py files beside the space")
    if representation == "nb" and task not in (None, "binary"):
        raise _fail(path, "representation", f"nb weighs terms for two classes, not {task}")
    if function is not None:
        if "builder" in raw:
            raise _fail(path, "builder", "a builder function is given too: give one of them")
        if code:
            raise _fail(path, "code", "ships files with a builder file, not a function")
        return builders.from_function(function), representation
    reference = raw.get("builder")
    if not isinstance(reference, str):
        raise _fail(path, "builder", "missing: FILE.py:FUNCTION, a file beside the space")
    base = Path(path).parent if Path(path).suffix in (".yaml", ".yml") else Path.cwd()
    return builders.from_file(reference, base, code, str(path)), representation


def _warm_start(
    path, entries: Any, defaults: dict, task: str | None, keys: tuple[str, ...]
) -> tuple[dict, ...]:
    """`warm_start:` a list of changes to the defaults, each a configuration tried first."""
    if not isinstance(entries, list):
        raise _fail(path, "warm_start", "expected a list of mappings of params")
    known = []
    for i, entry in enumerate(entries, 1):
        changes = _mapping(path, f"warm_start[{i}]", entry, keys)
        known.append(configuration(path, f"warm_start[{i}]", defaults, changes, task, keys))
    return tuple(known)


def _mapping(path, key: str, value: Any, known=PARAMS) -> dict:
    """A mapping of params; `known`: the keys allowed (None: any string, a custom space's)."""
    if not isinstance(value, dict):
        raise _fail(path, key, f"expected a mapping, got {type(value).__name__}")
    if known is not None:
        reject_unknown(path, key, value, known)
    for name in value:
        if not isinstance(name, str) or not name.isidentifier():
            raise _fail(path, f"{key}.{name}", "a key is a name (letters, digits, _)")
    return value


def reject_unknown(path, key: str, mapping: dict, known) -> None:
    """One UserError naming the first key of `mapping` that is not in `known`."""
    unknown = [str(k) for k in mapping if k not in known]
    if unknown:
        raise _fail(
            path,
            f"{key}.{unknown[0]}" if key != "(top level)" else unknown[0],
            f"unknown key; expected one of {', '.join(known)}",
        )


def _check_value(path, key: str, name: str, value: Any, task: str | None) -> None:
    if name not in PARAMS:  # a custom space's own key: any number, string, true/false or list
        if value is None or isinstance(value, dict):
            raise _fail(
                path, key, f"expected a number, a string, true/false or a list, got {value!r}"
            )
        return
    if name == "encoder":
        url = isinstance(value, str) and value.startswith(("http://", "https://"))
        if not url and not (isinstance(value, str) and value and Path(value).is_dir()):
            raise _fail(path, key, f"expected a SavedModel folder or hub URL, got {value!r}")
        return
    if name == "units":
        values = value if isinstance(value, list) and value else [value]
        if not all(_is_int(u) and u > 0 for u in values):
            raise _fail(path, key, f"expected a positive int or a list of them, got {value!r}")
        return
    if name in NAMED_CHOICES:
        allowed = TASK_LOSSES[task] if (name == "loss" and task) else NAMED_CHOICES[name]
        if not any(value == c and type(value) is type(c) for c in allowed):
            raise _fail(
                path,
                key,
                f"unknown {name} {value!r}; expected one of {', '.join(map(str, allowed))}",
            )
        if value == "nb" and task not in (None, "binary"):
            raise _fail(path, key, f"output_mode nb weighs terms for two classes, not {task}")
        return
    expected = float if name in FLOATS else int
    number = _is_number(value) if expected is float else _is_int(value)
    if not number:
        raise _fail(path, key, f"expected {expected.__name__}, got {value!r}")
    low, high = RANGES.get(name, (0, math.inf))
    if not (low <= value < high if name == "dropout" else low <= value <= high):
        raise _fail(path, key, f"out of range: {value!r} ({RANGE_WORDS.get(name, 'at least 0')})")


def _is_int(value: Any) -> bool:
    """An int, not a bool (YAML's `true` and the CLI's `units=true` are bools)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    """A finite int or float, not a bool."""
    return _is_int(value) or (isinstance(value, float) and math.isfinite(value))


def check_depth(path, key: str, config: dict[str, Any]) -> None:
    """`units` and `n_layers` agree: one unit count for every layer, or one per layer."""
    units, n_layers = config.get("units"), config.get("n_layers")
    if isinstance(units, list) and n_layers is not None and len(units) not in (1, n_layers):
        raise _fail(
            path,
            key,
            f"n_layers is {n_layers} but units gives {len(units)} layers "
            f"({','.join(map(str, units))}); give one unit count or {n_layers}",
        )


def configuration(
    path, key: str, base: dict, changes: dict, task: str | None, known=PARAMS
) -> dict:
    """`base` (a space's or table's defaults) with `changes`, validated once: what `train`,
    a table's row and a warm start train. A list of units in `changes` sets the depth, as a
    seed table's row does, unless `changes` also sets n_layers. `known`: the keys allowed
    (a custom space's `keys`; None: any)."""
    config = {**base, **changes}
    if isinstance(changes.get("units"), list) and "n_layers" not in changes:
        config["n_layers"] = len(changes["units"])
    if known is not None:
        reject_unknown(path, key or "(top level)", config, known)
    fixed = [k for k in ("family", "representation") if k in changes]
    if base.get("family") == CUSTOM and fixed:
        where = f"{key}.{fixed[0]}" if key else fixed[0]
        raise _fail(path, where, "fixed by the custom space")
    for name, value in config.items():
        _check_value(path, f"{key}.{name}" if key else name, name, value, task)
    check_depth(path, key or "units", config)
    return config | {k: float(config[k]) for k in FLOATS if k in config}


def _param(path, name: str, spec: Any, task: str | None) -> Param:
    key = f"search.{name}"
    if not isinstance(spec, dict):
        _check_value(path, key, name, spec, task)
        return Param(name, "fixed", value=spec)
    if "value" in spec:
        reject_unknown(path, key, spec, ("value",))
        _check_value(path, key + ".value", name, spec["value"], task)
        return Param(name, "fixed", value=spec["value"])
    kind = spec.get("type")
    if not isinstance(kind, str) or kind not in KIND_KEYS:
        raise _fail(path, key + ".type", f"expected int, float or categorical, got {kind!r}")
    extra = {"per_layer"} if name == "units" else set()
    reject_unknown(path, key, spec, {"type"} | KIND_KEYS[kind] | extra)
    if kind == "categorical":
        return _categorical(path, key, name, spec, task)
    return _numeric(path, key, name, spec, kind, task)


def _categorical(path, key: str, name: str, spec: dict, task: str | None) -> Param:
    choices = spec.get("choices")
    if not isinstance(choices, list) or not choices:
        raise _fail(path, key + ".choices", "expected a non-empty list")
    for i, choice in enumerate(choices):
        _check_value(path, f"{key}.choices[{i}]", name, choice, task)
    return Param(name, "categorical", choices=tuple(choices), per_layer=bool(spec.get("per_layer")))


def _numeric(path, key: str, name: str, spec: dict, kind: str, task: str | None) -> Param:
    if kind == "int" and name in FLOATS:
        raise _fail(path, f"{key}.type", f"{name} is a float")
    for bound in ("low", "high"):
        if bound not in spec:
            raise _fail(path, f"{key}.{bound}", "missing")
        _check_value(path, f"{key}.{bound}", name, spec[bound], task)
        number = _is_int(spec[bound]) if kind == "int" else _is_number(spec[bound])
        if not number:  # not a list of units, say
            raise _fail(path, f"{key}.{bound}", f"expected {kind}, got {spec[bound]!r}")
    low, high, log = spec["low"], spec["high"], spec.get("log", False)
    if low > high:
        raise _fail(path, f"{key}.low", f"low ({low}) is greater than high ({high})")
    if not isinstance(log, bool) or (log and low <= 0):
        raise _fail(path, f"{key}.log", "must be true or false, and true needs low > 0")
    step = spec.get("step")
    number = _is_int(step) if kind == "int" else _is_number(step)
    if step is not None and not (number and step > 0):
        raise _fail(path, f"{key}.step", f"expected a positive {kind}, got {step!r}")
    if step is not None and log:
        raise _fail(path, f"{key}.step", "a log scale takes no step")
    return Param(
        name,
        kind,
        low=low,
        high=high,
        step=spec.get("step"),
        log=log,
        per_layer=bool(spec.get("per_layer")),
    )


def resolve(name_or_path: str, search_dir: Path) -> Path:
    """`--space` value: a path, or the name of a file in search_spaces/."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    return search_dir / f"{name_or_path}.yaml"
