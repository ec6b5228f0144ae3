"""A custom space's top level (`family: custom`): the user's builder, read once, and the
representation it receives."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pipeline import builders
from pipeline.builders import Builder
from pipeline.spaces.values import fail
from pipeline.spaces.vocabulary import CUSTOM, CUSTOM_KEYS, REPRESENTATIONS


def custom_model(
    raw: dict, path, function: Callable | None, task: str | None
) -> tuple[Builder, str] | None:
    """A custom space's builder and representation (None for the built-in families): the
    file it names, read now, or `function`, a notebook's."""
    given = [k for k in CUSTOM_KEYS if k in raw]
    if function is None and "family" not in raw:
        if given:
            raise fail(path, given[0], "for your own model only: add `family: custom`")
        return None
    if raw.get("family", CUSTOM) != CUSTOM:
        raise fail(
            path,
            "family",
            f"at the top level only {CUSTOM!r} (your own builder); the built-in families "
            "go under defaults or search",
        )
    representation = _representation(raw, path)
    code = raw.get("code") or []
    if not isinstance(code, list):
        raise fail(path, "code", "expected a list of .py files beside the space")
    if representation == "nb" and task not in (None, "binary"):
        raise fail(path, "representation", f"nb weighs terms for two classes, not {task}")
    if function is not None:
        return _from_function(raw, path, function, code), representation
    return _from_file(raw, path, code), representation


def _representation(raw: dict, path) -> str:
    representation = raw.get("representation")
    if representation not in REPRESENTATIONS:
        problem = "missing" if representation is None else f"unknown {representation!r}"
        raise fail(
            path, "representation", f"{problem}; expected one of {', '.join(REPRESENTATIONS)}"
        )
    return representation


def _from_function(raw: dict, path, function: Callable, code: list) -> Builder:
    """A notebook's function, given instead of a `builder:` file."""
    if "builder" in raw:
        raise fail(path, "builder", "a builder function is given too: give one of them")
    if code:
        raise fail(path, "code", "ships files with a builder file, not a function")
    return builders.from_function(function)


def _from_file(raw: dict, path, code: list) -> Builder:
    """`builder: FILE.py:FUNCTION`, a file beside the space (beside the working folder when
    the space is no file), with its `code:` files."""
    reference = raw.get("builder")
    if not isinstance(reference, str):
        raise fail(path, "builder", "missing: FILE.py:FUNCTION, a file beside the space")
    base = Path(path).parent if Path(path).suffix in (".yaml", ".yml") else Path.cwd()
    return builders.from_file(reference, base, code, str(path))
