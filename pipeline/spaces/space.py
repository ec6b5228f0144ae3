"""A validated search space, frozen: what `params.py` samples and the plan carries to
worker processes and Ray tasks (so it pickles)."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from pipeline.builders import Builder
from pipeline.spaces.vocabulary import CUSTOM_KEYS, PARAMS


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

    @property
    def builder_keys(self) -> tuple[str, ...]:
        """A custom space's keys for its builder alone (pipeline reads none of them)."""
        return tuple(k for k in self.keys if k not in PARAMS and k not in CUSTOM_KEYS)


@dataclass(frozen=True)
class Param:
    """One searched key: a range (int or float), choices, or a fixed value."""

    name: str
    kind: str  # "int" | "float" | "categorical" | "fixed"
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    choices: tuple = ()
    value: Any = None
    per_layer: bool = False  # units only: one value per existing hidden layer


def _space(path, dataset, description, defaults: dict, params, warm_start, builder) -> Space:
    """A pickled Space, unpickled."""
    frozen = MappingProxyType(defaults)
    return Space(path, dataset, description, frozen, params, warm_start=warm_start, builder=builder)
