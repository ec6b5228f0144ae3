"""One value of a key, and one `search:` entry, checked against the vocabulary's table;
every problem is one UserError naming the file and the key."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pipeline.errors import UserError
from pipeline.spaces.space import Param
from pipeline.spaces.vocabulary import FLOATS, KEYS, KIND_KEYS, TASK_LOSSES, Key


def check_value(path: Path | str, key: str, name: str, value: Any, task: str | None) -> None:
    """`value` is one `name` may hold; `key`: where it was written (`defaults.units`)."""
    rule = KEYS.get(name)
    if rule is None:  # a custom space's own key: any number, string, true/false or list
        if value is None or isinstance(value, dict):
            raise fail(
                path, key, f"expected a number, a string, true/false or a list, got {value!r}"
            )
    elif rule.kind == "saved_model":
        url = isinstance(value, str) and value.startswith(("http://", "https://"))
        if not url and not (isinstance(value, str) and value and Path(value).is_dir()):
            raise fail(path, key, f"expected a SavedModel folder or hub URL, got {value!r}")
    elif rule.kind == "units":
        values = value if isinstance(value, list) and value else [value]
        if not all(is_int(u) and u > 0 for u in values):
            raise fail(path, key, f"expected a positive int or a list of them, got {value!r}")
    elif rule.kind == "choice":
        _check_choice(path, key, name, value, task)
    else:
        _check_number(path, key, name, value, rule)


def param(path: Path | str, name: str, spec: Any, task: str | None) -> Param:
    """The search entry `search.NAME`: a fixed value, or a range or choices to sample."""
    key = f"search.{name}"
    if not isinstance(spec, dict):
        check_value(path, key, name, spec, task)
        return Param(name, "fixed", value=spec)
    if "value" in spec:
        reject_unknown(path, key, spec, ("value",))
        check_value(path, key + ".value", name, spec["value"], task)
        return Param(name, "fixed", value=spec["value"])
    kind = spec.get("type")
    if not isinstance(kind, str) or kind not in KIND_KEYS:
        raise fail(path, key + ".type", f"expected int, float or categorical, got {kind!r}")
    extra = {"per_layer"} if name == "units" else set()
    reject_unknown(path, key, spec, {"type"} | KIND_KEYS[kind] | extra)
    if kind == "categorical":
        return _categorical(path, key, name, spec, task)
    return _numeric(path=path, key=key, name=name, spec=spec, kind=kind, task=task)


def reject_unknown(path: Path | str, key: str, mapping: dict, known) -> None:
    """One UserError naming the first key of `mapping` that is not in `known`."""
    unknown = [str(k) for k in mapping if k not in known]
    if unknown:
        raise fail(
            path,
            f"{key}.{unknown[0]}" if key != "(top level)" else unknown[0],
            f"unknown key; expected one of {', '.join(known)}",
        )


def fail(path: Path | str, key: str, problem: str) -> UserError:
    """The error of a space: `PATH: KEY: PROBLEM`."""
    return UserError(f"{path}: {key}: {problem}")


def is_int(value: Any) -> bool:
    """An int, not a bool (YAML's `true` and the CLI's `units=true` are bools)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A finite int or float, not a bool."""
    return is_int(value) or (isinstance(value, float) and math.isfinite(value))


def _check_choice(path, key: str, name: str, value: Any, task: str | None) -> None:
    """One of the key's named choices (a loss: one of the task's)."""
    allowed = TASK_LOSSES[task] if (name == "loss" and task) else KEYS[name].choices
    if not any(value == c and type(value) is type(c) for c in allowed):
        raise fail(
            path,
            key,
            f"unknown {name} {value!r}; expected one of {', '.join(map(str, allowed))}",
        )
    if value == "nb" and task not in (None, "binary"):
        raise fail(path, key, f"output_mode nb weighs terms for two classes, not {task}")


def _check_number(path, key: str, name: str, value: Any, rule: Key) -> None:
    """A number of the key's type, in its range."""
    number = is_number(value) if rule.kind == "float" else is_int(value)
    if not number:
        raise fail(path, key, f"expected {rule.kind}, got {value!r}")
    if not rule.holds(value):
        raise fail(path, key, f"out of range: {value!r} ({rule.range_words(name)})")


def _categorical(path, key: str, name: str, spec: dict, task: str | None) -> Param:
    choices = spec.get("choices")
    if not isinstance(choices, list) or not choices:
        raise fail(path, key + ".choices", "expected a non-empty list")
    for i, choice in enumerate(choices):
        check_value(path, f"{key}.choices[{i}]", name, choice, task)
    return Param(name, "categorical", choices=tuple(choices), per_layer=bool(spec.get("per_layer")))


def _numeric(path, key: str, name: str, spec: dict, kind: str, task: str | None) -> Param:
    if kind == "int" and name in FLOATS:
        raise fail(path, f"{key}.type", f"{name} is a float")
    for bound in ("low", "high"):
        if bound not in spec:
            raise fail(path, f"{key}.{bound}", "missing")
        check_value(path, f"{key}.{bound}", name, spec[bound], task)
        number = is_int(spec[bound]) if kind == "int" else is_number(spec[bound])
        if not number:  # not a list of units, say
            raise fail(path, f"{key}.{bound}", f"expected {kind}, got {spec[bound]!r}")
    low, high, log = spec["low"], spec["high"], spec.get("log", False)
    if low > high:
        raise fail(path, f"{key}.low", f"low ({low}) is greater than high ({high})")
    if not isinstance(log, bool) or (log and low <= 0):
        raise fail(path, f"{key}.log", "must be true or false, and true needs low > 0")
    step = spec.get("step")
    number = is_int(step) if kind == "int" else is_number(step)
    if step is not None and not (number and step > 0):
        raise fail(path, f"{key}.step", f"expected a positive {kind}, got {step!r}")
    if step is not None and log:
        raise fail(path, f"{key}.step", "a log scale takes no step")
    return Param(
        name,
        kind,
        low=low,
        high=high,
        step=spec.get("step"),
        log=log,
        per_layer=bool(spec.get("per_layer")),
    )
