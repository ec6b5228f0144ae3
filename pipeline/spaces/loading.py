"""Finding and reading a space file: `--space NAME` or a path, read once and validated."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml

from pipeline.errors import UserError
from pipeline.spaces.dialect import read_yaml
from pipeline.spaces.space import Space
from pipeline.spaces.validation import parse


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


def space_path(name_or_path: str, find: Callable[[str], Path]) -> Path:
    """A `--space` value's file: a path, or a name that `find` turns into the file
    `NAME.yaml` of the search spaces."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    return find(f"{name_or_path}.yaml")
