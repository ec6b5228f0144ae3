"""A space as YAML reads it → a validated `Space`; and a configuration (defaults with
changes) validated once, as `train`, a table's row and a warm start give it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pipeline.spaces.custom import custom_model
from pipeline.spaces.space import Param, Space
from pipeline.spaces.values import check_value, fail, param, reject_unknown
from pipeline.spaces.vocabulary import (
    CUSTOM,
    CUSTOM_KEYS,
    CUSTOM_REQUIRED,
    DEFAULT_LOSS,
    FLOATS,
    PARAMS,
    REQUIRED,
    TOP_KEYS,
)


def parse(
    raw: Any, path: Path | str, task: str | None = None, builder: Callable | None = None
) -> Space:
    """`raw`, a YAML document, as a space; `path` names it in errors. `builder`: a function
    of the caller's for a custom space (from a notebook)."""
    if not isinstance(raw, dict):
        raise fail(path, "(top level)", "expected a mapping with keys " + ", ".join(TOP_KEYS))
    reject_unknown(path, "(top level)", raw, TOP_KEYS + CUSTOM_KEYS)
    custom = custom_model(raw, path, builder, task)
    defaults, search = _sections(raw, path, custom[1] if custom else None)
    if task and "loss" not in defaults and "loss" not in search:
        defaults = {**defaults, "loss": DEFAULT_LOSS[task]}
    for name, value in defaults.items():
        check_value(path, f"defaults.{name}", name, value, task)
    check_depth(path, "defaults", defaults)
    params = _params(path, search, defaults, task)
    keys = PARAMS + tuple(k for k in [*defaults, *search] if k not in PARAMS)  # declared
    required = CUSTOM_REQUIRED if custom else REQUIRED
    missing = [k for k in required if k not in defaults and k not in search]
    if missing:
        raise fail(path, "defaults", f"missing {', '.join(missing)} (set it in defaults or search)")
    return Space(
        path=str(path),
        dataset=raw.get("dataset"),
        description=str(raw.get("description", "")),
        defaults=MappingProxyType(dict(defaults)),
        params=params,
        warm_start=_warm_start(path, raw.get("warm_start") or [], defaults, task, keys),
        builder=custom[0] if custom else None,
    )


def configuration(
    path: Path | str, key: str, base: dict, changes: dict, task: str | None, known=PARAMS
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
        raise fail(path, where, "fixed by the custom space")
    for name, value in config.items():
        check_value(path, f"{key}.{name}" if key else name, name, value, task)
    check_depth(path, key or "units", config)
    return config | {k: float(config[k]) for k in FLOATS if k in config}


def check_depth(path: Path | str, key: str, config: dict[str, Any]) -> None:
    """`units` and `n_layers` agree: one unit count for every layer, or one per layer."""
    units, n_layers = config.get("units"), config.get("n_layers")
    if isinstance(units, list) and n_layers is not None and len(units) not in (1, n_layers):
        raise fail(
            path,
            key,
            f"n_layers is {n_layers} but units gives {len(units)} layers "
            f"({','.join(map(str, units))}); give one unit count or {n_layers}",
        )


def _sections(raw: dict, path, representation: str | None) -> tuple[dict, dict]:
    """The space's `defaults` and `search`. `representation`: a custom space's (None for the
    built-in families); its defaults then name it and the custom family."""
    known = PARAMS if representation is None else None  # a custom space declares its own keys
    defaults = _mapping(path, "defaults", raw.get("defaults") or {}, known)
    search = _mapping(path, "search", raw.get("search") or {}, known)
    if representation is None:
        if CUSTOM in [defaults.get("family"), *_choices(search.get("family"))]:
            problem = "custom goes at the top level, with builder and representation"
            raise fail(path, "family", problem)
        return defaults, search
    for key, mapping in (("defaults", defaults), ("search", search)):
        fixed = [k for k in ("family", "representation") if k in mapping]
        if fixed:
            raise fail(
                path,
                f"{key}.{fixed[0]}",
                "fixed at the top level of a custom space (custom is not mixed with "
                "the mlp or embedding family in one space)",
            )
    return {**defaults, "family": CUSTOM, "representation": representation}, search


def _params(path, search: dict, defaults: dict, task: str | None) -> tuple[Param, ...]:
    """The searched params: the family first, then layers before units."""
    params = [param(path, name, spec, task) for name, spec in search.items()]
    units = defaults.get("units")
    if "n_layers" in search and "units" not in search and isinstance(units, list) and units[1:]:
        raise fail(path, "defaults.units", "one count per layer, but n_layers is searched")
    order = {"family": 0, "n_layers": 1}
    return tuple(sorted(params, key=lambda p: order.get(p.name, 2)))


def _choices(spec: Any) -> list:
    """The values a search entry may take (its choices, or its fixed value)."""
    if isinstance(spec, dict):
        return list(spec.get("choices") or [spec.get("value")])
    return [spec]


def _warm_start(
    path, entries: Any, defaults: dict, task: str | None, keys: tuple[str, ...]
) -> tuple[dict, ...]:
    """`warm_start:` a list of changes to the defaults, each a configuration tried first."""
    if not isinstance(entries, list):
        raise fail(path, "warm_start", "expected a list of mappings of params")
    known = []
    for i, entry in enumerate(entries, 1):
        changes = _mapping(path, f"warm_start[{i}]", entry, keys)
        known.append(
            configuration(
                path=path,
                key=f"warm_start[{i}]",
                base=defaults,
                changes=changes,
                task=task,
                known=keys,
            )
        )
    return tuple(known)


def _mapping(path, key: str, value: Any, known=PARAMS) -> dict:
    """A mapping of params; `known`: the keys allowed (None: any string, a custom space's)."""
    if not isinstance(value, dict):
        raise fail(path, key, f"expected a mapping, got {type(value).__name__}")
    if known is not None:
        reject_unknown(path, key, value, known)
    for name in value:
        if not isinstance(name, str) or not name.isidentifier():
            raise fail(path, f"{key}.{name}", "a key is a name (letters, digits, _)")
    return value
