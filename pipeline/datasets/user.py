"""Datasets the user brings: `folder:PATH` (one subfolder of .txt files per class, the
aclImdb and `text_dataset_from_directory` layout), `csv:PATH` with a text and a label column,
and `csv:PATH` tables (a label column and feature columns: `tabular`)."""

from __future__ import annotations

import errno
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import numpy as np

from pipeline.datasets import text
from pipeline.datasets.splits import Texts  # texts and class indices
from pipeline.datasets.tabular import TASKS
from pipeline.errors import UserError

log = logging.getLogger("pipeline")
KINDS = ("folder", "csv")


@dataclass(frozen=True)
class CsvOptions:
    """The command-line options that say how to read a CSV file (None: not given)."""

    text_col: str | None = None
    label_col: str | None = None
    feature_cols: tuple[str, ...] = ()
    task: str | None = None  # tables: regression | binary | multiclass (default: inferred)
    k_folds: int | None = None  # tables: 0 = a held-out validation split

    def given(self) -> bool:
        return self != CsvOptions()


@dataclass(frozen=True)
class UserSource:
    kind: str  # "folder" | "csv"
    path: Path
    text_col: str | None = "text"  # None: a table of features (csv only)
    label_col: str = "label"
    feature_cols: tuple[str, ...] = ()  # tables: () = every column but the label
    task: str | None = None
    k_folds: int | None = None

    @property
    def is_table(self) -> bool:
        return self.kind == "csv" and self.text_col is None

    @property
    def name(self) -> str:
        """The canonical identifier: absolute path, columns for CSV (the MLflow experiment)."""
        if self.kind == "folder":
            return f"folder:{self.path}"
        if not self.is_table:
            return f"csv:{self.path}?{urlencode({'text': self.text_col, 'label': self.label_col})}"
        query = {"label": self.label_col, "features": ",".join(self.feature_cols)}
        query |= {"task": self.task or "", "k_folds": "" if self.k_folds is None else self.k_folds}
        query = {k: v for k, v in query.items() if v != ""}
        return f"csv:{self.path}?{urlencode(query, safe=',')}"


QUERY_KEYS = ("text", "label", "features", "task", "k_folds")  # csv:PATH?KEY=VALUE&...


def is_user(name: str) -> bool:
    return name.split(":", 1)[0] in KINDS and ":" in name


def parse(name: str, options: CsvOptions | None = None) -> UserSource:
    """`folder:PATH` or `csv:PATH[?text=COL&label=COL]` (a text dataset), or
    `csv:PATH?label=COL[&features=A,B&task=T&k_folds=K]` (a table); the options override
    the query. Without a text column named, a CSV file with a `text` column is a text
    dataset (as before tables existed), any other a table."""
    options = options or CsvOptions()
    kind, _, rest = name.partition(":")
    raw_path, _, query = rest.partition("?") if kind == "csv" else (rest, "", "")
    given = dict(parse_qsl(query))
    unknown = sorted(set(given) - set(QUERY_KEYS))
    if unknown:
        expected = ", ".join(QUERY_KEYS)
        raise UserError(f"{name}: unknown option {unknown[0]!r}; expected one of {expected}")
    path = Path(raw_path).expanduser().resolve()
    if kind == "folder" and not path.is_dir():
        raise UserError(f"{name}: {path} is not a folder (expected one subfolder per class)")
    if kind == "folder" and options.given():
        raise UserError(
            "--text-col, --label-col, --feature-cols, --task and --k-folds are for csv:"
        )
    if kind == "csv" and not path.is_file():
        raise UserError(f"{name}: {path} is not a file")
    if kind == "folder":
        return UserSource(kind, path)
    label_col = options.label_col or given.get("label", "label")
    text_col = options.text_col or given.get("text")
    features = options.feature_cols or tuple(f for f in given.get("features", "").split(",") if f)
    task = options.task or given.get("task")
    k_folds = options.k_folds if options.k_folds is not None else _int(given.get("k_folds"))
    table = (features, task, k_folds) != ((), None, None)
    if text_col is None and not table and "text" in _header(path):
        text_col = "text"
    if text_col is not None and table:
        raise UserError("--feature-cols, --task and --k-folds are for tables, not --text-col")
    if task is not None and task not in TASKS:
        raise UserError(f"--task must be one of {', '.join(TASKS)}, got {task!r}")
    if k_folds is not None and (k_folds < 0 or k_folds == 1):
        raise UserError(f"--k-folds must be 0 (a held-out split) or at least 2, got {k_folds}")
    return UserSource(
        kind=kind,
        path=path,
        text_col=text_col,
        label_col=label_col,
        feature_cols=tuple(features),
        task=task,
        k_folds=k_folds,
    )


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        raise UserError(f"k_folds must be a whole number, got {value!r}") from None


def _header(path: Path) -> list[str]:
    import pandas as pd

    try:
        return list(pd.read_csv(path, nrows=0).columns)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError):
        return []  # reading the whole file says what is wrong with it


def fingerprint(source: UserSource) -> str:
    """Changes when any file is added, removed, resized or touched (for the cache key)."""
    if source.kind != "folder":
        return text.fingerprint([source.path])
    return text.fingerprint([_checked(source.path, f) for f in source.path.rglob("*.txt")])


def _checked(root: Path, file: Path) -> Path:
    """`file`, when it can be read; a broken link or a link loop is one line naming it."""
    try:
        file.stat()
    except OSError as error:
        raise UserError(_unreadable(root, file, error)) from None
    return file


def _unreadable(root: Path, file: Path, error: OSError) -> str:
    """What is wrong with a .txt entry of a `folder:` dataset, and what to do."""
    if error.errno == errno.ELOOP:
        problem = "is a symbolic link loop; remove it or point it at a text file"
    elif file.is_symlink() and error.errno == errno.ENOENT:
        target = os.readlink(file)
        problem = f"is a broken symbolic link (to {target}); remove it or restore {target}"
    else:
        problem = f"cannot be read ({error.strerror}); fix it or remove it"
    return f"folder:{root}: {file} {problem}"


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
            try:
                texts.append(file.read_text(encoding="utf-8", errors="replace"))
            except OSError as error:
                raise UserError(_unreadable(path, file, error)) from None
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
