"""The YAML dialect of space files, seed tables and the CLI's `key=value` words: YAML 1.1
as PyYAML reads it, except that `1e-3` is a float."""

from __future__ import annotations

import re
from typing import Any

import yaml


def read_yaml(text: str) -> Any:
    """A YAML document (a space, a table, a `key=value` word); yaml.YAMLError if malformed."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506  (a SafeLoader)


class _Loader(yaml.SafeLoader):
    """YAML 1.1 as PyYAML reads it, except that `1e-3` is a float (YAML 1.2 and every
    user agree; PyYAML wants `1.0e-3`): the one change, written here because PyYAML has
    no switch for it."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)
