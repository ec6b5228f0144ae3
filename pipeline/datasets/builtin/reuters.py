"""Reuters-21578 newswires, labelled with the 46 topics of the Keras `reuters` dataset and
split as its loader does (a fifth for test, 1,000 of the rest validate). `DATASET`, at the
end, declares it."""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np

from pipeline.datasets import splits
from pipeline.datasets.archives import Archive, read_tar
from pipeline.datasets.declaration import Declaration
from pipeline.datasets.types import DataOptions
from pipeline.errors import UserError

TOPICS = (
    "cocoa",
    "grain",
    "veg-oil",
    "earn",
    "acq",
    "wheat",
    "copper",
    "housing",
    "money-supply",
    "coffee",
    "sugar",
    "trade",
    "reserves",
    "ship",
    "cotton",
    "carcass",
    "crude",
    "nat-gas",
    "cpi",
    "money-fx",
    "interest",
    "gnp",
    "meal-feed",
    "alum",
    "oilseed",
    "gold",
    "tin",
    "strategic-metal",
    "livestock",
    "retail",
    "ipi",
    "iron-steel",
    "rubber",
    "heat",
    "jobs",
    "lei",
    "bop",
    "zinc",
    "orange",
    "pet-chem",
    "dlr",
    "gas",
    "silver",
    "wpi",
    "hog",
    "lead",
)
EXPECTED = "reut2-NNN.sgm files of <REUTERS> elements with NEWIDs 1..N and no gap"
_SGM = re.compile(r"(?:^|/)reut2-\d{3}\.sgm$")
_DOC = re.compile(r"<REUTERS\b([^>]*)>(.*?)</REUTERS>", re.S)
_NEWID = re.compile(r'NEWID="(\d+)"')
_TOPICS = re.compile(r"<TOPICS>(.*?)</TOPICS>", re.S)
_D = re.compile(r"<D>(.*?)</D>", re.S)
_BODY = re.compile(r"<BODY>(.*?)</BODY>", re.S)
_TITLE = re.compile(r"<TITLE>(.*?)</TITLE>", re.S)


def keras_splits(location: Path, options: DataOptions) -> dict[str, splits.Texts]:
    """A seed-113 shuffle: the last fifth tests, the first 1,000 (an eighth of a smaller
    archive) validate. `options.with_title` prepends each headline to its body."""
    texts, labels = read_newswires(location, options.with_title)
    order = splits.shuffled(len(texts))
    n_train = int(len(texts) * (1 - splits.TEST_FRACTION))
    n_val = min(1_000, n_train // 8)
    parts = {"val": order[:n_val], "train": order[n_val:n_train], "test": order[n_train:]}
    return {key: splits.take(texts, labels, rows) for key, rows in parts.items()}


def read_newswires(location: Path, with_title: bool = False) -> tuple[list[str], np.ndarray]:
    """Texts and topic indices of the newswires whose first topic is a Keras topic, by NEWID."""
    docs = _parse(location)
    index = {topic: i for i, topic in enumerate(TOPICS)}
    texts, labels = [], []
    for _, _, body in sorted(docs):
        topics = _D.findall(_first(_TOPICS, body))
        if topics and topics[0] in index:
            texts.append(_text(body, with_title))
            labels.append(index[topics[0]])
    return texts, np.array(labels, dtype="int64")


def _parse(location: Path) -> list[tuple[int, str, str]]:
    if location.is_dir():
        files = [(p.name, p.read_bytes()) for p in sorted(location.glob("reut2-*.sgm"))]
    else:
        files = list(read_tar(location, lambda name: _SGM.search(name) is not None, EXPECTED))
    docs = []
    for name, data in files:
        text = data.decode("latin-1")
        found = _DOC.findall(text)
        if not found or len(found) != text.count("<REUTERS "):
            raise UserError(f"{location}: {name} is truncated or malformed; expected {EXPECTED}")
        docs += [(int(_NEWID.search(attrs).group(1)), attrs, body) for attrs, body in found]
    _check(location, docs)
    return docs


def _check(location: Path, docs: list) -> None:
    ids = sorted(newid for newid, _, _ in docs)
    if not ids or ids != list(range(1, len(ids) + 1)):
        raise UserError(f"{location}: newswires missing ({len(ids)} found); expected {EXPECTED}")


def _first(pattern: re.Pattern, body: str) -> str:
    match = pattern.search(body)
    return match.group(1) if match else ""


def _text(body: str, with_title: bool) -> str:
    text = _first(_BODY, body)
    if with_title:
        text = _first(_TITLE, body) + "\n" + text
    return html.unescape(text).strip()


DATASET = Declaration(
    name="reuters",
    task="multiclass",
    source=Archive(
        fname="reuters21578.tar.gz",
        origin="https://kdd.ics.uci.edu/databases/reuters21578/reuters21578.tar.gz",
        unpacked=("reut2-*.sgm",),
    ),
    texts=keras_splits,
    class_names=TOPICS,
    sizes=(7_982, 1_000, 2_246),
    n_features=10_000,
    options=("with_title",),  # the headline: not in the seeds' texts, a key of wider spaces
)
