"""IMDB movie reviews (Maas et al. 2011) from the original aclImdb archive: the seed recipe
trains on 15,000 reviews, validates on 10,000 and tests on 25,000. `DATASET`, at the end,
declares it."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np

from pipeline.datasets import splits
from pipeline.datasets.archives import Archive, read_tar
from pipeline.datasets.declaration import Declaration
from pipeline.datasets.types import DataOptions
from pipeline.errors import UserError

EXPECTED = "aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt, the same number in each folder"
_REVIEW = re.compile(r"(?:^|/)aclImdb/(train|test)/(pos|neg)/(\d+)_\d+\.txt$")


def seed_splits(location: Path, options: DataOptions) -> dict[str, splits.Texts]:
    """The seed notebooks' split: the first 10,000 of a seed-113 shuffle of the training
    reviews validate (2/5 of a smaller archive), the official test reviews test."""
    reviews = read_reviews(location)
    texts, labels = reviews["train"]
    order = splits.shuffled(len(texts))
    n_val = min(10_000, len(texts) * 2 // 5)
    return {
        "train": splits.take(texts, labels, order[n_val:]),
        "val": splits.take(texts, labels, order[:n_val]),
        "test": reviews["test"],
    }


def read_reviews(location: Path) -> dict[str, tuple[list[str], np.ndarray]]:
    """{"train"|"test": (raw texts, labels)} in a fixed order (split, label, review id)."""
    found = _read_files(location)
    _check(location, found)
    out = {}
    for split in ("train", "test"):
        rows = sorted(
            (label, int(rid), text) for (s, label, rid), text in found.items() if s == split
        )
        texts = [text for _, _, text in rows]
        labels = np.array([label for label, _, _ in rows], dtype="float32")
        out[split] = (texts, labels)
    return out


def _read_files(location: Path) -> dict[tuple[str, int, str], str]:
    if location.is_dir():
        pairs = ((str(p.relative_to(location)), p.read_bytes()) for p in location.rglob("*.txt"))
    else:
        pairs = read_tar(location, lambda name: _REVIEW.search(name) is not None, EXPECTED)
    found = {}
    for name, data in pairs:
        match = _REVIEW.search(name.replace("\\", "/"))
        if match:
            split, polarity, rid = match.groups()
            found[(split, int(polarity == "pos"), rid)] = data.decode("utf-8")
    return found


def _check(location: Path, found: dict) -> None:
    counts = Counter((split, label) for split, label, _ in found)
    sizes = {counts[(s, lab)] for s in ("train", "test") for lab in (0, 1)}
    empty = [key for key, text in found.items() if not text.strip()]
    if len(sizes) != 1 or 0 in sizes or empty:
        raise UserError(
            f"{location}: incomplete IMDB data ({dict(counts)} reviews per split/label, "
            f"{len(empty)} empty); expected {EXPECTED}"
        )


DATASET = Declaration(
    name="imdb",
    task="binary",
    source=Archive(
        "aclImdb_v1.tar.gz",
        "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
        unpacked=("aclImdb/train/pos/*.txt",),
    ),
    texts=seed_splits,
    class_names=("negative", "positive"),
    sizes=(15_000, 10_000, 25_000),
    n_features=10_000,
    replacements=(("<br />", " "),),  # the reviews' line breaks are HTML tags
)
