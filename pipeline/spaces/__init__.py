"""Search spaces: YAML files validated once into frozen types (`params.py` samples them).

- `vocabulary`: what a configuration may hold: its keys, their types, ranges and choices.
- `dialect`: the YAML dialect of spaces, tables and `key=value` words.
- `loading`: finding and reading a space file; `validation`: a space and a configuration
  validated (`values`: one value or search entry; `custom`: a custom space's builder).
- `space`: the frozen `Space` and `Param`."""

from pipeline.spaces.dialect import read_yaml
from pipeline.spaces.loading import load, space_path
from pipeline.spaces.space import Param, Space
from pipeline.spaces.validation import check_depth, configuration, parse
from pipeline.spaces.values import reject_unknown
from pipeline.spaces.vocabulary import (
    CUSTOM,
    CUSTOM_REQUIRED,
    FAMILIES,
    FAMILY_PARAMS,
    FLOATS,
    KEYS,
    NAMED_CHOICES,
    PARAMS,
    REPRESENTATION,
    REPRESENTATIONS,
    REQUIRED,
    TASK_LOSSES,
    Key,
)

__all__ = [
    "CUSTOM",
    "CUSTOM_REQUIRED",
    "FAMILIES",
    "FAMILY_PARAMS",
    "FLOATS",
    "KEYS",
    "NAMED_CHOICES",
    "PARAMS",
    "REPRESENTATION",
    "REPRESENTATIONS",
    "REQUIRED",
    "TASK_LOSSES",
    "Key",
    "Param",
    "Space",
    "check_depth",
    "configuration",
    "load",
    "parse",
    "read_yaml",
    "reject_unknown",
    "space_path",
]
