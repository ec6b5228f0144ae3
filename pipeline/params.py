"""Trial parameters: sampled from a space, flattened for logging, turned into data options."""

from __future__ import annotations

import math
from typing import Any

from pipeline.datasets import DataOptions, with_options
from pipeline.errors import UserError
from pipeline.spaces import CUSTOM, FAMILY_PARAMS, REPRESENTATION, Param, Space

EMBEDDING_SEQUENCE_LENGTH = 200  # token ids per text when a space does not say
MAX_GRID_POINTS = 100_000  # a grid search larger than this would not finish anyway


def suggest(trial, space: Space) -> dict[str, Any]:
    """Trial parameters: the defaults, overridden by what the trial samples from the space."""
    params = dict(space.defaults)
    for p in space.params:
        if p.name in _unused(params):
            continue
        if p.name == "units" and p.per_layer:
            n = int(params.get("n_layers", 1))
            params["units"] = [_suggest_one(trial, p, f"units_{i}") for i in range(1, n + 1)]
        else:
            params[p.name] = _suggest_one(trial, p, p.name)
    if "n_layers" in params and isinstance(params.get("units"), int):
        params["units"] = [params["units"]] * int(params["n_layers"])
    return for_family(params)


def trial_params(space: Space, config: dict[str, Any]) -> dict[str, Any]:
    """A configuration as Optuna params of `space` (for `enqueue_trial`): units as units_1..n,
    and only the values the space's distributions hold (the rest are not searched there)."""
    units = layer_units(config) if "units" in config else []
    depth = next((p for p in space.params if p.name == "n_layers"), None)
    deepest = int(depth.high) if depth is not None and depth.kind == "int" else len(units)
    out: dict[str, Any] = {}
    for p in space.params:
        if p.name == "units" and p.per_layer:
            candidates = {f"units_{i}": u for i, u in enumerate(units[:deepest], start=1)}
        elif p.name == "units":
            candidates = {"units": units[0]} if len(set(units)) == 1 else {}
        elif p.name == "n_layers":
            candidates = {"n_layers": len(units) if units else config.get("n_layers")}
        else:
            candidates = {p.name: config[p.name]} if p.name in config else {}
        out |= {k: v for k, v in candidates.items() if holds(p, v)}
    return out


def restrict(space: Space, values: dict[str, Any]) -> dict[str, Any]:
    """The Optuna params (of another study, say) that `space` could have sampled."""
    by_name = {p.name: p for p in space.params}
    out = {}
    for name, value in values.items():
        p = by_name.get("units" if name.startswith("units_") else name)
        if p is not None and holds(p, value):
            out[name] = value
    return out


def holds(p: Param, value: Any) -> bool:
    """Can `p`'s distribution produce `value`?"""
    if p.kind == "fixed":
        return False
    if p.kind == "categorical":
        return any(value == c and type(value) is type(c) for c in p.choices)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if not p.low <= value <= p.high:
        return False
    if p.kind == "int":
        return float(value).is_integer() and (value - p.low) % (p.step or 1) == 0
    return not p.step or abs(round((value - p.low) / p.step) * p.step + p.low - value) < 1e-12


def ask(trial, p: Param) -> Any:
    """One value of `p` from the trial (a question of a `build_model(hp)`, say)."""
    return _suggest_one(trial, p, p.name)


def _suggest_one(trial, p: Param, name: str) -> Any:
    if p.kind == "int":
        return trial.suggest_int(name, p.low, p.high, step=p.step or 1, log=p.log)
    if p.kind == "float":
        return trial.suggest_float(name, p.low, p.high, step=p.step, log=p.log)
    if p.kind == "categorical":
        return trial.suggest_categorical(name, list(p.choices))
    return p.value


def for_family(params: dict[str, Any]) -> dict[str, Any]:
    """`params` without the other model families' params."""
    return {k: v for k, v in params.items() if k not in _unused(params)}


def _unused(params: dict[str, Any]) -> tuple[str, ...]:
    """The other model families' params (none when the space has no `family`)."""
    family = params.get("family")
    if family == CUSTOM:  # the user's builder may read any key its space declares
        return ()
    return tuple(n for f, names in FAMILY_PARAMS.items() if family and f != family for n in names)


def grid(space: Space) -> dict[str, list]:
    """The space as Optuna's GridSampler wants it; floats need a step to be enumerable."""
    out = {}
    for p in space.params:
        if p.kind == "fixed":
            continue
        values = list(p.choices) if p.kind == "categorical" else _enumerate(space, p)
        names = [p.name]
        if p.name == "units" and p.per_layer:
            most = max(
                [q.high for q in space.params if q.name == "n_layers" and q.high]
                or [space.defaults.get("n_layers", 1)]
            )
            names = [f"units_{i}" for i in range(1, int(most) + 1)]
        out |= {name: values for name in names}
    if not out:
        raise UserError(f"{space.path}: the grid sampler needs at least one searched param")
    points = math.prod(len(values) for values in out.values())
    if points > MAX_GRID_POINTS:  # Optuna's GridSampler lists every point up front
        raise UserError(
            f"{space.path}: the grid has {points:.3g} points (at most {MAX_GRID_POINTS:,}); "
            "narrow the ranges or give them a larger step"
        )
    return out


def _enumerate(space: Space, p: Param) -> list:
    if p.kind == "float" and not p.step:
        raise UserError(f"{space.path}: search.{p.name}: the grid sampler needs a step for floats")
    step = p.step or 1
    count = int(round((p.high - p.low) / step)) + 1
    if count > MAX_GRID_POINTS:
        raise UserError(
            f"{space.path}: search.{p.name}: {count:.3g} grid values (at most "
            f"{MAX_GRID_POINTS:,}); narrow the range or give a larger step"
        )
    return [p.low + i * step for i in range(count)]


def layer_units(params: dict[str, Any]) -> list[int]:
    """Units per hidden layer from `units` (a list, "16,32" or one int) and `n_layers`."""
    units = params.get("units", 16)
    if isinstance(units, str):
        units = [int(u) for u in units.split(",") if u.strip()]
    if isinstance(units, int):
        units = [units]
    units = list(units)
    n_layers = params.get("n_layers", len(units))
    if len(units) == 1:
        units = units * n_layers
    if len(units) != n_layers:
        raise ValueError(f"n_layers={n_layers} but {len(units)} units given ({units})")
    return units


def cap_batch(values: dict[str, Any], n_train: int) -> dict[str, Any]:
    """A batch of at most an eighth of the training rows (and at least 8), so that a small
    dataset of your own still gets several updates an epoch."""
    cap = max(8, n_train // 8)
    return values | {"batch_size": cap} if int(values["batch_size"]) > cap else values


def describe_params(params: dict[str, Any]) -> dict[str, Any]:
    """Params as logged: units as "16,16" and one entry per layer."""
    if "units" not in params:  # a custom builder's
        return dict(params)
    units = layer_units(params)
    flat = {k: v for k, v in params.items() if k != "units"}
    flat |= {"n_layers": len(units), "units": ",".join(map(str, units))}
    return flat | {f"units_{i}": u for i, u in enumerate(units, start=1)}


def representation(params: dict[str, Any]) -> dict[str, Any]:
    """The params that decide the features (what `data_options` reads)."""
    keys = ("family", "representation", *REPRESENTATION)
    return {k: params[k] for k in keys if k in params}


def data_options(params: dict[str, Any]) -> DataOptions:
    """The feature settings a trial's params ask for (the seeds' defaults otherwise): bags of
    words for the mlp family; token ids or, with an encoder, its vectors for embeddings."""
    changes = {k: params[k] for k in REPRESENTATION if k in params}
    if params.get("family") == CUSTOM:
        return with_options(DataOptions(), **_custom_options(params["representation"], changes))
    if params.get("family") == "embedding" and params.get("encoder"):
        changes = {"output_mode": "encoder", "encoder": params["encoder"]}
    elif params.get("family") == "embedding":
        changes = {"output_mode": "int", "sequence_length": EMBEDDING_SEQUENCE_LENGTH} | changes
    return with_options(DataOptions(), **changes)


def _custom_options(representation: str, changes: dict[str, Any]) -> dict[str, Any]:
    """A custom builder's representation as feature settings: token ids (200 a text unless
    `sequence_length` says), a bag of words, or a table's rows as they are."""
    if representation in ("table", "arrays"):  # rows as they are
        return {}
    if representation == "token_ids":
        return {"sequence_length": EMBEDDING_SEQUENCE_LENGTH} | changes | {"output_mode": "int"}
    return changes | {"output_mode": representation}
