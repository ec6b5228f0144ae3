"""Facts about the real archives (../shared/data/README.md), asserted through the loaders."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.datasets import describe, load_dataset
from pipeline.datasets.builtin import imdb, reuters

pytestmark = pytest.mark.realdata


def test_imdb_has_12500_reviews_per_class_and_split(real_data):
    reviews = imdb.read_reviews(real_data / "aclImdb_v1.tar.gz")
    for split in ("train", "test"):
        texts, labels = reviews[split]
        assert len(texts) == 25_000
        assert np.bincount(labels.astype(int)).tolist() == [12_500, 12_500]


def test_imdb_splits_and_features(real_data):
    data = load_dataset("imdb")
    assert (len(data.train), len(data.val), len(data.test)) == (15_000, 10_000, 25_000)
    assert data.n_features == 10_000
    assert data.train.x.format == "csr"


def test_reuters_has_11228_newswires_in_46_classes(real_data):
    texts, labels = reuters.read_newswires(real_data / "reuters21578.tar.gz")
    assert len(texts) == 11_228
    assert len(np.unique(labels)) == 46
    assert sum(t.lower().endswith("reuter") for t in texts) > 10_000  # body ends in the trailer
    data = load_dataset("reuters")
    assert (len(data.train), len(data.val), len(data.test)) == (7_982, 1_000, 2_246)
    assert len(data.train) + len(data.val) == 8_982


def test_boston_has_506_rows(real_data):
    data = load_dataset("boston_housing")
    assert (len(data.train), len(data.test), data.n_features) == (404, 102, 13)
    all_y = np.concatenate([data.train.y, data.test.y])
    assert all_y.mean() == pytest.approx(22.5328, abs=1e-3)


def test_describe_reports_the_real_sizes(real_data):
    rows = {name: describe(name) for name in ("imdb", "reuters", "boston_housing")}
    assert [rows["imdb"][k] for k in ("n_train", "n_val", "n_test")] == [15_000, 10_000, 25_000]
    assert rows["reuters"]["n_classes"] == 46
    assert (rows["boston_housing"]["n_train"], rows["boston_housing"]["n_test"]) == (404, 102)
