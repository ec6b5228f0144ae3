"""Seed tables: the rows a notebook trained by hand, with the numbers it reported."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipeline import settings, spaces
from pipeline.errors import UserError
from pipeline.metrics import lower_is_better

TOP_KEYS = (
    "name",
    "dataset",
    "source",
    "space",
    "defaults",
    "columns",
    "rows",
    "conclusions",
    "baseline",
)
REPORTED_KEYS = ("split", "loss", "accuracy", "mae", "folds")
CLAIM_KEYS = ("claim", "metric", "higher", "lower", "within", "best", "than", "rows", "among")


@dataclass(frozen=True)
class Row:
    index: int  # 1-based, as in the seed's table
    setting: str
    params: dict[str, Any]
    reported: dict[str, Any]  # the notebook's numbers: split (test|val), loss, accuracy|mae, folds

    @property
    def split(self) -> str:
        return self.reported.get("split", "test")


@dataclass(frozen=True)
class Conclusion:
    claim: str
    metric: str
    kind: str  # higher | lower | within | best
    rows: tuple[int, ...]
    than: tuple[int, ...] = ()
    tolerance: float = 0.0


@dataclass(frozen=True)
class SeedTable:
    name: str
    dataset: str
    source: str
    columns: tuple[str, ...]
    rows: tuple[Row, ...]
    conclusions: tuple[Conclusion, ...]
    baseline: str = ""  # "shuffled_labels": print the random-guess accuracy
    space: spaces.Space | None = None  # `space: FILE`: rows are its configurations


def table_path(name_or_path: str) -> Path:
    """A table file, or the name of one in the search spaces' `tables/` (the user's own
    `search_spaces/tables/` first, then the shipped tables)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        return path
    return settings.find_space_file(f"tables/{name_or_path}.yaml")


def load(path: Path, task_of) -> SeedTable:
    """Read and validate a table file; `task_of(dataset)` gives the dataset's task."""
    try:
        raw = spaces.read_yaml(path.read_text())
    except OSError as error:
        raise UserError(f"{path}: cannot read table ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise UserError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(raw, dict) or not raw.get("rows"):
        raise UserError(f"{path}: expected a mapping with rows")
    spaces.reject_unknown(path, "(top level)", raw, TOP_KEYS)
    task = task_of(raw.get("dataset", ""))
    space = _space(path, raw.get("space"), task)
    defaults = raw.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise UserError(f"{path}: defaults: expected a mapping")
    if space is not None:  # the space's defaults (its builder's, say), then the table's
        _fits(path, space, raw.get("dataset"), defaults)
        defaults = {**space.defaults, **defaults}
    rows = tuple(
        _row(path=path, index=i, defaults=defaults, spec=spec, task=task, space=space)
        for i, spec in enumerate(raw["rows"], 1)
    )
    conclusions = tuple(
        _conclusion(path, i, c, len(rows)) for i, c in enumerate(raw.get("conclusions") or [], 1)
    )
    return SeedTable(
        name=str(raw.get("name", path.stem)),
        dataset=raw["dataset"],
        source=str(raw.get("source", "")),
        columns=tuple(raw.get("columns") or ("setting",)),
        rows=rows,
        conclusions=conclusions,
        baseline=str(raw.get("baseline", "")),
        space=space,
    )


def _fits(path: Path, space: spaces.Space, dataset: Any, defaults: dict) -> None:
    """The table's dataset is the space's, and its defaults keep a custom space's family."""
    if space.dataset and space.dataset != dataset:
        raise UserError(f"{path}: space: written for dataset {space.dataset!r}, not {dataset!r}")
    fixed = [k for k in ("family", "representation") if k in defaults]
    if space.is_custom and fixed:
        raise UserError(f"{path}: defaults.{fixed[0]}: fixed by the custom space")


def _space(path: Path, name: Any, task: str) -> spaces.Space | None:
    """`space: FILE` (beside the table, or a name in search_spaces/)."""
    if name is None:
        return None
    if not isinstance(name, str):
        raise UserError(f"{path}: space: expected a space file, got {name!r}")
    candidates = [
        path.parent / name,
        settings.find_space_file(name),
        spaces.space_path(name, settings.find_space_file),
    ]
    found = next((c for c in candidates if c.is_file()), candidates[0])
    if not found.is_file():
        raise UserError(f"{path}: space: {name} not found (beside the table or in search_spaces/)")
    return spaces.load(found, task)


def _row(path, index: int, defaults: dict, spec: dict, task: str, space) -> Row:
    key = f"rows[{index}]"
    spec = dict(spec)
    reported = spec.pop("seed", None)  # in the YAML: the seed notebook's numbers
    if not isinstance(reported, dict):
        raise UserError(f"{path}: {key}.seed: expected the seed's reported numbers")
    spaces.reject_unknown(path, f"{key}.seed", reported, REPORTED_KEYS)
    setting = str(spec.pop("setting", ""))
    if space is not None:  # the space's keys (a custom one's own too)
        params = spaces.configuration(
            path=path, key=key, base=defaults, changes=spec, task=task, known=space.keys
        )
        required = spaces.CUSTOM_REQUIRED if space.is_custom else spaces.REQUIRED
        missing = [k for k in required if k not in params]
        if missing:
            raise UserError(f"{path}: {key}: missing {', '.join(missing)}")
        return Row(index, setting, params, reported)
    params = spaces.configuration(path, key, defaults, spec, task)
    spaces.parse({"defaults": params}, f"{path}: {key}", task)  # the keys every row needs
    return Row(index, setting, params, reported)


def _conclusion(path, index: int, raw: dict, n_rows: int) -> Conclusion:
    key = f"conclusions[{index}]"
    spaces.reject_unknown(path, key, raw, CLAIM_KEYS)
    kinds = [k for k in ("higher", "lower", "within", "best") if k in raw]
    if len(kinds) != 1 or "metric" not in raw or "claim" not in raw:
        raise UserError(f"{path}: {key}: needs claim, metric and one of higher/lower/within/best")
    kind = kinds[0]
    rows = raw.get("rows") if kind == "within" else raw[kind]
    than = raw.get("among") if kind == "best" else raw.get("than", [])
    for group in (rows, than):
        if not group or any(not isinstance(r, int) or not 1 <= r <= n_rows for r in group):
            raise UserError(f"{path}: {key}: row numbers must be 1..{n_rows}")
    tolerance = float(raw["within"]) if kind == "within" else 0.0
    return Conclusion(
        claim=raw["claim"],
        metric=raw["metric"],
        kind=kind,
        rows=tuple(rows),
        than=tuple(than),
        tolerance=tolerance,
    )


def holds(conclusion: Conclusion, means: dict[int, dict[str, float]]) -> bool:
    """Does our mean per row (row -> metric -> value) support the seed's conclusion?"""

    def group(rows):
        return sum(means[r][conclusion.metric] for r in rows) / len(rows)

    if conclusion.kind == "best":
        among = {r: means[r][conclusion.metric] for r in conclusion.than}
        best = (min if lower_is_better(conclusion.metric) else max)(among, key=among.get)
        return best in conclusion.rows
    ours, theirs = group(conclusion.rows), group(conclusion.than)
    if conclusion.kind == "within":
        return abs(ours - theirs) <= conclusion.tolerance
    return ours > theirs if conclusion.kind == "higher" else ours < theirs
