"""Text datasets the user brings: `folder:PATH` (one subfolder of .txt files per class, the
aclImdb and `text_dataset_from_directory` layout) and `csv:PATH` (a text and a label column)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import numpy as np

from pipeline.datasets import text
from pipeline.errors import UserError

log = logging.getLogger("pipeline")
KINDS = ("folder", "csv")
Texts = tuple[list[str], np.ndarray]  # texts and class indices


@dataclass(frozen=True)
class UserSource:
    kind: str  # "folder" | "csv"
    path: Path
    text_col: str = "text"
    label_col: str = "label"

    @property
    def name(self) -> str:
        """The canonical identifier: absolute path, columns for CSV (the MLflow experiment)."""
        if self.kind == "folder":
            return f"folder:{self.path}"
        query = urlencode({"text": self.text_col, "label": self.label_col})
        return f"csv:{self.path}?{query}"


def is_user(name: str) -> bool:
    return name.split(":", 1)[0] in KINDS and ":" in name


def parse(name: str, text_col: str | None = None, label_col: str | None = None) -> UserSource:
    """`folder:PATH` or `csv:PATH[?text=COL&label=COL]`; the options override the query."""
    kind, _, rest = name.partition(":")
    raw_path, _, query = rest.partition("?") if kind == "csv" else (rest, "", "")
    columns = dict(parse_qsl(query))
    path = Path(raw_path).expanduser().resolve()
    if kind == "folder" and not path.is_dir():
        raise UserError(f"{name}: {path} is not a folder (expected one subfolder per class)")
    if kind == "csv" and not path.is_file():
        raise UserError(f"{name}: {path} is not a file")
    text_col = text_col or columns.get("text", "text")
    label_col = label_col or columns.get("label", "label")
    return UserSource(kind, path, text_col, label_col)


def fingerprint(source: UserSource) -> str:
    """Changes when any file is added, removed, resized or touched (for the cache key)."""
    files = source.path.rglob("*.txt") if source.kind == "folder" else [source.path]
    return text.fingerprint(files)


# --- folders -------------------------------------------------------------------------------


def _class_folders(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and any(p.glob("*.txt")))


def folder_classes(path: Path) -> tuple[list[str], bool]:
    """Class names, and whether `train/` and `test/` subfolders hold them. With both, only
    classes present in both count (aclImdb's unlabelled `train/unsup` is left out)."""
    train, test = path / "train", path / "test"
    if train.is_dir() and test.is_dir():
        in_train = {p.name for p in _class_folders(train)}
        in_test = {p.name for p in _class_folders(test)}
        ignored = sorted(in_train ^ in_test)
        if ignored:
            log.warning(
                "%s: ignoring class folders not in both train/ and test/: %s", path, ignored
            )
        names, split = sorted(in_train & in_test), True
    else:
        names, split = [p.name for p in _class_folders(path)], False
    if len(names) < 2:
        where = f"{path}/train and {path}/test" if split else str(path)
        raise UserError(
            f"folder:{path}: found {len(names)} class folder(s) with .txt files in {where}; "
            "a classification dataset needs at least 2"
        )
    return names, split


def _read_classes(path: Path, names: list[str]) -> Texts:
    texts, labels = [], []
    for index, name in enumerate(names):
        for file in sorted((path / name).glob("*.txt")):
            texts.append(file.read_text(encoding="utf-8", errors="replace"))
            labels.append(index)
    return texts, np.array(labels)


def read_folder(source: UserSource) -> tuple[list[str], dict[str, Texts]]:
    """Class names and {"train": ..., "test": ...} when the folder has them, else {"all": ...}."""
    names, split = folder_classes(source.path)
    if split:
        parts = {part: _read_classes(source.path / part, names) for part in ("train", "test")}
    else:
        parts = {"all": _read_classes(source.path, names)}
    return names, parts


# --- CSV -----------------------------------------------------------------------------------


def _frame(source: UserSource):
    import pandas as pd

    try:
        frame = pd.read_csv(source.path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        first = str(error).strip().splitlines()[0]
        raise UserError(f"{source.name}: not a readable CSV file ({first})") from None
    missing = [c for c in (source.text_col, source.label_col) if c not in frame.columns]
    if missing:
        raise UserError(
            f"{source.path}: no column {missing[0]!r}; columns are {', '.join(frame.columns)} "
            "(choose with --text-col and --label-col)"
        )
    return frame


def csv_classes(source: UserSource, frame=None) -> list[str]:
    """The distinct labels, sorted (`frame`: the file already read)."""
    labels = (_frame(source) if frame is None else frame)[source.label_col].str.strip()
    names = sorted(set(labels[labels != ""]))
    if len(names) < 2:
        raise UserError(
            f"{source.path}: column {source.label_col!r} has {len(names)} distinct label(s); "
            "a classification dataset needs at least 2"
        )
    return names


def read_csv(source: UserSource) -> tuple[list[str], dict[str, Texts]]:
    """Class names (sorted label values) and {"all": (texts, labels)}; rows without a text
    or a label are dropped, with a warning."""
    frame = _frame(source)
    text, label = frame[source.text_col], frame[source.label_col].str.strip()
    keep = (text.str.strip() != "") & (label != "")
    if not keep.all():
        log.warning("%s: dropping %d rows without text or label", source.path, (~keep).sum())
    names = csv_classes(source, frame)
    index = {name: i for i, name in enumerate(names)}
    labels = np.array([index[v] for v in label[keep]])
    return names, {"all": (list(text[keep]), labels)}
