"""Keras Tuner's `build_model(hp)`, unchanged: `hp` answers `Int`, `Float`, `Choice`,
`Boolean`, `Fixed` and `conditional_scope` as Keras Tuner's `HyperParameters` does, but each
value comes from an `Answer`: during a search, the Optuna trial (define-by-run, so the space
is declared once, in the builder); when the plan checks the builder or `pipeline train`
trains one configuration, the values given, else each call's `default=`.

Written here rather than taken from `keras_tuner`: its `HyperParameters` draws values from
its own oracle, and making it ask an Optuna trial would mean overriding its private
`_retrieve`. Only the public methods a `build_model(hp)` calls are mirrored; `keras_tuner`
need not be installed. A `keras_tuner.HyperModel` (an object with `build(hp)`) works too."""

from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pipeline.spaces import Param

Answer = Callable[[Param, Any], Any]  # (the question, its default) -> the value


def takes_hp(builder: Any) -> bool:
    """Whether a builder is Keras Tuner's form, `build_model(hp)` or an object with
    `build(hp)`, rather than pipeline's `build(params, inputs)`."""
    if not callable(builder) or inspect.isclass(builder):
        return callable(getattr(builder, "build", None))
    if callable(getattr(builder, "build", None)) and not inspect.isfunction(builder):
        return True  # a HyperModel instance (callable or not)
    try:
        signature = inspect.signature(builder)
    except (TypeError, ValueError):
        return False
    positional = [
        p
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    return len(positional) == 1


def given_or_default(given: Mapping[str, Any]) -> Answer:
    """The answer outside a search: the value given for the name, else the call's default."""

    def answer(question: Param, default: Any) -> Any:
        return given.get(question.name, default)

    return answer


class HyperParameters:
    """What `build_model(hp)` receives. `values` holds every answer, by the user's names."""

    def __init__(self, answer: Answer) -> None:
        self._answer = answer
        self._conditions: list[tuple[str, tuple]] = []
        self.values: dict[str, Any] = {}
        self.asked: dict[str, tuple[Param, Any]] = {}  # name -> (question, default)

    def Int(  # noqa: N802  (Keras Tuner's names)
        self,
        name: str,
        min_value: int,
        max_value: int,
        step: int | None = None,
        sampling: str = "linear",
        default: int | None = None,
        parent_name: str | None = None,
        parent_values: Any = None,
    ) -> int | None:
        question = _numeric(
            name, "int", low=min_value, high=max_value, step=step, sampling=sampling
        )
        with self._scope(parent_name, parent_values):
            value = self._ask(question, min_value if default is None else default)
        return None if value is None else int(value)

    def Float(  # noqa: N802
        self,
        name: str,
        min_value: float,
        max_value: float,
        step: float | None = None,
        sampling: str = "linear",
        default: float | None = None,
        parent_name: str | None = None,
        parent_values: Any = None,
    ) -> float | None:
        question = _numeric(
            name, "float", low=float(min_value), high=float(max_value), step=step, sampling=sampling
        )
        with self._scope(parent_name, parent_values):
            value = self._ask(question, min_value if default is None else default)
        return None if value is None else float(value)

    def Choice(  # noqa: N802
        self,
        name: str,
        values: list,
        ordered: bool | None = None,
        default: Any = None,
        parent_name: str | None = None,
        parent_values: Any = None,
    ) -> Any:
        if not values:
            raise ValueError(f"hp.Choice({name!r}): `values` must not be empty")
        question = Param(name, "categorical", choices=tuple(values))
        with self._scope(parent_name, parent_values):
            return self._ask(question, values[0] if default is None else default)

    def Boolean(  # noqa: N802
        self,
        name: str,
        default: bool = False,
        parent_name: str | None = None,
        parent_values: Any = None,
    ) -> bool | None:
        question = Param(name, "categorical", choices=(False, True))
        with self._scope(parent_name, parent_values):
            return self._ask(question, bool(default))

    def Fixed(  # noqa: N802
        self, name: str, value: Any, parent_name: str | None = None, parent_values: Any = None
    ) -> Any:
        with self._scope(parent_name, parent_values):
            if not self._active():
                return None
            self.values[name] = value
            return value

    @contextlib.contextmanager
    def conditional_scope(self, parent_name: str, parent_values: Any) -> Iterator[None]:
        """What is declared inside is asked only while `parent_name`'s value is one of
        `parent_values`; otherwise it is None, as in Keras Tuner."""
        if parent_name not in self.values:
            raise ValueError(
                f"hp.conditional_scope({parent_name!r}): declare {parent_name!r} before it"
            )
        values = parent_values if isinstance(parent_values, list | tuple) else [parent_values]
        self._conditions.append((parent_name, tuple(values)))
        try:
            yield
        finally:
            self._conditions.pop()

    def get(self, name: str) -> Any:
        if name not in self.values:
            raise KeyError(f"hyperparameter {name!r} was not declared")
        return self.values[name]

    def __getitem__(self, name: str) -> Any:
        return self.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self.values

    def _scope(self, parent_name: str | None, parent_values: Any):
        if parent_name is None:
            return contextlib.nullcontext()
        return self.conditional_scope(parent_name, parent_values)

    def _active(self) -> bool:
        return all(self.values.get(name) in values for name, values in self._conditions)

    def _ask(self, question: Param, default: Any) -> Any:
        """The answer to `question`, asked once per name (a second declaration of a name
        gets the first answer, as in Keras Tuner); None inside an inactive scope."""
        if not self._active():
            return None
        if question.name not in self.values:
            self.asked[question.name] = (question, default)
            self.values[question.name] = self._answer(question, default)
        return self.values[question.name]


def _numeric(name: str, kind: str, low, high, step, sampling: str) -> Param:
    """An Int or Float as a space's Param. Keras Tuner's `step` on a log scale multiplies
    (1, 2, 4, ... for step=2), which Optuna's log ranges do not take: those values become
    choices, under the same name."""
    if sampling not in ("linear", "log"):
        raise ValueError(f"hp.{kind.title()}({name!r}): sampling {sampling!r}; use linear or log")
    if not low <= high:
        raise ValueError(f"hp.{kind.title()}({name!r}): min_value {low} is above max_value {high}")
    log = sampling == "log"
    if log and low <= 0:
        raise ValueError(f"hp.{kind.title()}({name!r}): log sampling needs min_value > 0")
    if log and step:
        if step <= 1:
            raise ValueError(f"hp.{kind.title()}({name!r}): a log step multiplies; give one > 1")
        count = int(math.floor(math.log(high / low) / math.log(step) + 1e-9)) + 1
        choices = [low * step**i for i in range(count)]
        return Param(name, "categorical", choices=tuple(_as(kind, c) for c in choices))
    return Param(
        name, kind, low=low, high=high, step=step or (1 if kind == "int" else None), log=log
    )


def _as(kind: str, value: float) -> int | float:
    return int(round(value)) if kind == "int" else float(value)


def call_builder(builder: Any, hp: HyperParameters) -> Any:
    """`build_model(hp)`, or a HyperModel's `build(hp)`; a HyperModel class is made first."""
    if inspect.isclass(builder):
        builder = builder()
    if callable(getattr(builder, "build", None)) and not inspect.isfunction(builder):
        return builder.build(hp)
    return builder(hp)


def bind(builder: Any, answer: Answer) -> BoundBuilder:
    """A `build_model(hp)` as a `build(params, inputs)` whose `hp` asks `answer`."""
    return BoundBuilder(builder, answer)


class BoundBuilder:
    """`build(params, inputs)` for a Keras Tuner builder: each build gets a fresh `hp` (k
    folds build k times; a name asked again gets the same answer from a trial), kept as
    `last` so its values can be logged. It builds its own input, as a Keras Tuner model
    does: the model must take the data's rows."""

    def __init__(self, builder: Any, answer: Answer) -> None:
        self.builder, self.answer = builder, answer
        self.last: HyperParameters | None = None

    def __call__(self, params: Mapping[str, Any], inputs: Any) -> Any:
        self.last = HyperParameters(self.answer)
        return call_builder(self.builder, self.last)

    @property
    def values(self) -> dict[str, Any]:
        return dict(self.last.values) if self.last is not None else {}
