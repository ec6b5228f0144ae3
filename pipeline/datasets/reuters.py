"""Reuters-21578 newswires, labelled with the 46 topics of the Keras `reuters` dataset."""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np

from pipeline.datasets.archives import Source, read_tar
from pipeline.errors import UserError

SOURCE = Source(
    fname="reuters21578.tar.gz",
    origin="https://kdd.ics.uci.edu/databases/reuters21578/reuters21578.tar.gz",
    unpacked=("reut2-*.sgm",),
)
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
