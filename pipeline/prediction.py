"""`pipeline predict`: raw inputs from the command line or a file, through a logged model,
to one line per input with its label and probability (or its predicted value)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.errors import UserError
from pipeline.inference import TEXT_COLUMN

FORMATS = ("table", "json", "csv")
SHOWN = 60  # characters of each input in the table
NUMBER_TYPES = {"double": "float64", "float": "float32"}  # MLflow column types we coerce to


def read_inputs(texts: list[str] | None, file: Path | None) -> pd.DataFrame:
    """Texts given as arguments, or a file: one text a line (.txt), or a CSV with a `text`
    column or the feature columns of a table."""
    if texts and file:
        raise UserError("give texts or --file, not both")
    if texts:
        return pd.DataFrame({TEXT_COLUMN: texts})
    if file is None:
        raise UserError("nothing to predict: give texts or --file FILE")
    try:
        if file.suffix.lower() == ".csv":
            frame = pd.read_csv(file)
        else:
            lines = [line for line in file.read_text().splitlines() if line.strip()]
            frame = pd.DataFrame({TEXT_COLUMN: lines})
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise UserError(f"{file}: cannot read inputs ({error})") from None
    if frame.empty:
        raise UserError(f"{file}: no inputs in the file")
    return frame


def check_columns(frame: pd.DataFrame, columns: list[str], file: Path | None) -> None:
    """The model's input columns (from its signature) must all be there."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        where = file or "the input"
        raise UserError(
            f"{where}: no column {missing[0]!r}; columns are {', '.join(map(str, frame.columns))}"
        )


def coerce(frame: pd.DataFrame, types: dict[str, str], file: Path | None) -> pd.DataFrame:
    """The input columns as the model's signature types them (`types`: column -> MLflow
    type): a number written as an integer (`127`) is the number 127.0 that the model was
    logged with, and a value that is no number is refused in one line naming its column.
    `mlflow models serve` casts by the same signature when it parses a request."""
    from pipeline.datasets.tabular import as_numbers

    out = frame.copy()
    for column, kind in types.items():
        values = frame[column]
        if kind in NUMBER_TYPES:
            try:
                out[column] = as_numbers(values, column).astype(NUMBER_TYPES[kind])
            except (ValueError, TypeError) as error:
                where = file or "the input"
                raise UserError(f"{where}: {error}") from None
        elif kind == "string":
            out[column] = values.where(values.isna(), values.astype(str))
    return out


def render(inputs: pd.DataFrame, predictions: pd.DataFrame, fmt: str) -> str:
    """One line per input: the input (texts shortened in the table) and its prediction."""
    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}; use {', '.join(FORMATS)}")
    shown = ["label", "probability"] if "label" in predictions else ["value"]
    if TEXT_COLUMN in inputs:
        first = inputs[[TEXT_COLUMN]].rename(columns={TEXT_COLUMN: "input"})
    else:
        first = pd.DataFrame({"row": range(1, len(inputs) + 1)})
    frame = pd.concat([first.reset_index(drop=True), predictions[shown]], axis=1)
    if fmt == "json":
        return frame.to_json(orient="records", force_ascii=False, indent=1)
    if fmt == "csv":
        return frame.to_csv(index=False).rstrip("\n")
    if "input" in frame:
        frame["input"] = [_short(t) for t in frame["input"]]
    return frame.to_markdown(index=False, floatfmt=".4f")


def _short(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= SHOWN else text[: SHOWN - 1] + "…"
