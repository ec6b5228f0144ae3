"""Loaders on tiny archives in the original formats: parsing, labels, splits, cache, errors."""

from __future__ import annotations

import gzip
import json
import os
import re
import string
import tarfile
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
from typer.testing import CliRunner

from pipeline import datasets
from pipeline.cli import app
from pipeline.datasets import DataOptions, TextSettings, load_dataset, registry, splits, text
from pipeline.datasets.archives import Archive, fetch
from pipeline.datasets.builtin import reuters
from pipeline.errors import UserError
from tests.conftest import REUTERS_TOPICS, add_file, make_housing, make_imdb


def test_imdb_splits_follow_the_seed_recipe(tiny_data):
    data = load_dataset("imdb")
    # 50 train reviews: 2/5 validation (10,000 of 25,000 in the real data), the rest train
    assert (len(data.train), len(data.val), len(data.test)) == (30, 20, 50)
    assert data.task == "binary" and data.class_names == ("negative", "positive")
    assert data.train.x.format == "csr" and data.train.x.dtype == np.float32
    assert sorted(np.unique(data.train.x.data)) == [1.0]  # multi-hot
    assert data.test.y.sum() == 25  # balanced
    # the validation rows are the first of a seed-113 shuffle of the train reviews
    order = splits.shuffled(50)
    labels = np.array([0.0] * 25 + [1.0] * 25, dtype="float32")  # sorted: neg then pos
    assert np.array_equal(data.val.y, labels[order[:20]])
    assert np.array_equal(data.train.y, labels[order[20:]])


def _words(text: str) -> list[str]:
    """TextVectorization's default standardization: lower case, punctuation stripped."""
    return re.sub(f"[{re.escape(string.punctuation)}]", "", text.lower()).split()


def _are_most_frequent(words: set[str], texts: list[str]) -> bool:
    """Are `words` the most frequent words of `texts` (a tie at the cut allows either)?"""
    counts = Counter(w for t in texts for w in _words(t))
    others = [c for w, c in counts.items() if w not in words]
    return min(counts[w] for w in words) >= max(others, default=0)


def test_imdb_vocabulary_is_adapted_on_train_only_and_strips_markup(tiny_data):
    from pipeline.datasets.builtin import imdb

    reviews = imdb.read_reviews(tiny_data / "aclImdb_v1.tar.gz")
    assert "<br />" in reviews["train"][0][0]  # raw, as in the archive
    seen = registry.read_texts(registry.spec_of("imdb"), tiny_data / "aclImdb_v1.tar.gz", None)
    assert not any("<br />" in t for part in seen.values() for t in part[0])  # declared
    reviews = {
        k: (text.replace_all(t, imdb.DATASET.replacements), y) for k, (t, y) in reviews.items()
    }
    options = DataOptions(text=TextSettings(max_tokens=8))
    data = load_dataset("imdb", options)
    assert data.n_features == 8  # 7 most frequent words + the out-of-vocabulary slot
    texts, order = reviews["train"][0], splits.shuffled(50)
    train = [texts[i] for i in order[20:]]  # the 30 training reviews; the first 20 validate
    test = reviews["test"][0]
    counts = Counter(w for t in train for w in _words(t)).most_common()
    assert counts[6][1] > counts[7][1]  # no tie at the cut: one right vocabulary
    expected = {w for w, _ in counts[:7]}
    # the tiny archive is such that no other choice of texts has these 7 most frequent
    for other in (test, train + test, texts, texts + test):
        assert not _are_most_frequent(expected, other)
    vocabulary = datasets.fitted_for(registry.spec_of("imdb"), options).vocabulary
    assert vocabulary[0] == "[UNK]" and set(vocabulary[1:]) == expected
    assert "br" not in vocabulary


def test_reuters_labels_are_the_first_topic_in_keras_order(tiny_data):
    texts, labels = reuters.read_newswires(tiny_data / "reuters21578.tar.gz")
    kept = [t for t in (REUTERS_TOPICS * 8) if t in reuters.TOPICS]
    assert len(texts) == len(kept) == 64  # "soybean" is not a Keras topic, "" has none
    assert [reuters.TOPICS[i] for i in labels] == kept
    assert reuters.TOPICS.index("earn") == 3 and len(reuters.TOPICS) == 46
    assert texts[0].startswith("Company said profit") and texts[0].endswith("Reuter")
    assert "<quoted>" in texts[0]  # entities decoded
    assert "HEADLINE" not in " ".join(texts)


def test_reuters_title_is_an_option(tiny_data):
    texts, _ = reuters.read_newswires(tiny_data / "reuters21578.tar.gz", with_title=True)
    assert texts[0].startswith("HEADLINE1 EARN\nCompany said")


def test_reuters_split_sizes(tiny_data):
    data = load_dataset("reuters")
    n_train = int(64 * 0.8)  # 51 train, 13 test; validation = first 51 // 8 of train
    assert (len(data.train), len(data.val), len(data.test)) == (n_train - 6, 6, 13)
    assert data.n_classes == 46 and data.train.y.dtype == np.int64


def test_boston_split_and_standardization(tiny_data):
    data = load_dataset("boston_housing")
    assert (len(data.train), len(data.test), data.val, data.k_folds) == (48, 12, None, 4)
    assert np.allclose(data.train.x.mean(axis=0), 0, atol=1e-5)
    assert np.allclose(data.train.x.std(axis=0), 1, atol=1e-4)  # divided by the std
    raw = np.loadtxt(tiny_data / "housing.data")
    order = splits.shuffled(60)
    assert np.allclose(data.test.y, raw[order[48:], 13])


@pytest.mark.parametrize(("output_mode", "repeated"), [("multi_hot", 1.0), ("count", 2.0)])
def test_output_modes(tiny_data, output_mode, repeated):
    # every tiny newswire names its topic's words twice ("profit net shr profit net shr")
    # and "said" once: a repeated word is 1 in multi_hot and 2 in count
    options = DataOptions(text=TextSettings(output_mode=output_mode))
    data = load_dataset("reuters", options)
    vocabulary = datasets.fitted_for(registry.spec_of("reuters"), options).vocabulary
    x = data.train.x.toarray()
    earn = data.train.y == reuters.TOPICS.index("earn")
    assert earn.sum() > 0
    assert (x[earn, vocabulary.index("profit")] == repeated).all()
    assert (x[:, vocabulary.index("said")] == 1.0).all()
    assert set(np.unique(data.train.x.data)) == {1.0, repeated}


def test_tf_idf_and_bigrams(tiny_data):
    unigram = load_dataset("reuters", DataOptions(text=TextSettings(max_tokens=1000)))
    bigram = load_dataset("reuters", DataOptions(text=TextSettings(max_tokens=1000, ngrams=2)))
    big = {"max_tokens": 100_000}
    bigram_all = load_dataset("reuters", DataOptions(text=TextSettings(**big, ngrams=2)))
    trigram = load_dataset("reuters", DataOptions(text=TextSettings(**big, ngrams=3)))
    assert bigram.n_features > unigram.n_features
    assert 100_000 > trigram.n_features > bigram_all.n_features  # whole vocabularies
    tfidf = load_dataset("reuters", DataOptions(text=TextSettings(output_mode="tf_idf")))
    rows = np.sqrt(np.asarray(tfidf.train.x.multiply(tfidf.train.x).sum(axis=1))).ravel()
    assert np.allclose(rows, 1.0, atol=1e-5)  # l2-normalised rows
    assert len(np.unique(tfidf.train.x.data)) > 2


def test_cache_is_reused_and_invalidated(tiny_data, tmp_path):
    cache = tmp_path / "cache"
    first = load_dataset("imdb")
    files = sorted(cache.glob("imdb-*.npz"))
    assert len(files) == 1
    again = load_dataset("imdb")
    assert (again.train.x != first.train.x).nnz == 0
    assert sorted(cache.glob("imdb-*.npz")) == files  # no new file: reused
    load_dataset("imdb", DataOptions(text=TextSettings(max_tokens=50)))
    assert len(list(cache.glob("imdb-*.npz"))) == 2  # a changed setting never reuses
    archive = tiny_data / "aclImdb_v1.tar.gz"
    os.utime(archive, ns=(1, 1))  # a copy (another folder, another machine) has a new time
    load_dataset("imdb")
    assert len(list(cache.glob("imdb-*.npz"))) == 2  # the same archive: reused
    archive.write_bytes(archive.read_bytes() + b"\0" * 1024)  # another size: another release
    load_dataset("imdb")
    assert len(list(cache.glob("imdb-*.npz"))) == 3  # a changed archive never reuses


def test_the_cache_stands_in_for_an_archive_that_is_not_there(tiny_data, tmp_path):
    """A machine with the cache but not the archive (nor TensorFlow, to vectorize with)."""
    first = load_dataset("imdb")
    (tiny_data / "aclImdb_v1.tar.gz").unlink()
    again = load_dataset("imdb")
    assert (again.train.x != first.train.x).nnz == 0 and (again.test.y == first.test.y).all()
    fitted = datasets.fitted_for(datasets.spec_of("imdb"))  # what a published model needs
    assert len(fitted.vocabulary) == again.n_features
    with pytest.raises(UserError, match=r"imdb: .*aclImdb_v1.tar.gz is not there, and its cache"):
        load_dataset("imdb", DataOptions(text=TextSettings(max_tokens=50)))


def test_unwritable_cache_warns_once_and_loads(tiny_data, tmp_path, monkeypatch):
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("x")
    monkeypatch.setenv("PIPELINE_CACHE_DIR", str(blocked / "cache"))
    with pytest.warns(UserWarning, match="not caching") as caught:
        data = load_dataset("imdb")
    assert len(data.train) == 30
    assert len([w for w in caught if "not caching" in str(w.message)]) == 1


def test_corrupt_archive_is_one_clear_error(tiny_data):
    (tiny_data / "aclImdb_v1.tar.gz").write_bytes(b"this is not a tar file")
    with pytest.raises(UserError, match=r"aclImdb_v1\.tar\.gz: corrupt or truncated archive"):
        load_dataset("imdb")


def test_truncated_archive_is_one_clear_error(tiny_data):
    path = tiny_data / "reuters21578.tar.gz"
    path.write_bytes(path.read_bytes()[:-400])
    with pytest.raises(UserError, match="reuters21578.tar.gz: corrupt or truncated"):
        load_dataset("reuters")


def test_archive_missing_reviews_is_not_silently_smaller(tiny_data, tmp_path):
    folder = tmp_path / "short"
    folder.mkdir()
    with (
        tarfile.open(make_imdb(folder)) as src,
        tarfile.open(tiny_data / "aclImdb_v1.tar.gz", "w:gz") as dst,
    ):
        for member in src.getmembers():
            if "test/pos/3_" not in member.name:
                dst.addfile(member, src.extractfile(member))
    with pytest.raises(UserError, match="incomplete IMDB data"):
        load_dataset("imdb")


def test_reuters_with_a_gap_in_newids_is_an_error(tiny_data):
    path = tiny_data / "reuters21578.tar.gz"
    with tarfile.open(path) as tar:
        sgm = tar.extractfile("reut2-001.sgm").read()
    with tarfile.open(path, "w:gz") as tar:
        add_file(tar, "reut2-000.sgm", sgm)  # the first file's NEWIDs are missing
    with pytest.raises(UserError, match="newswires missing"):
        load_dataset("reuters")


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink"])
def test_archive_members_escaping_the_folder_are_refused(tiny_data, kind):
    path = tiny_data / "reuters21578.tar.gz"
    with tarfile.open(path) as tar:
        sgm = tar.extractfile("reut2-000.sgm").read()
    with tarfile.open(path, "w:gz") as tar:
        if kind == "symlink":
            link = tarfile.TarInfo("reut2-001.sgm")
            link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(link)
        else:
            add_file(tar, "../reut2-001.sgm" if kind == "dotdot" else "/tmp/reut2-001.sgm", b"x")
        add_file(tar, "reut2-000.sgm", sgm)
    with pytest.raises(UserError, match="is a link or leaves the archive's folder"):
        load_dataset("reuters")


def test_unpacked_folders_are_accepted(tiny_data, tmp_path, monkeypatch):
    folder = tmp_path / "unpacked"
    with tarfile.open(tiny_data / "aclImdb_v1.tar.gz") as tar:
        tar.extractall(folder, filter="data")
    with tarfile.open(tiny_data / "reuters21578.tar.gz") as tar:
        tar.extractall(folder, filter="data")
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(folder))
    assert len(load_dataset("imdb").test) == 50
    assert len(load_dataset("reuters").test) == 13


def test_download_from_origin_when_absent(tmp_path, monkeypatch):
    remote = tmp_path / "remote"
    remote.mkdir()
    make_housing(remote)
    declared = registry.declared()
    boston = declared["boston_housing"]
    source = replace(boston.source, origin=(remote / "housing.data").as_uri())
    monkeypatch.setitem(declared, "boston_housing", replace(boston, source=source))
    data_dir = tmp_path / "empty"
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(data_dir))
    assert "will download from file://" in datasets.describe("boston_housing")["source"]
    data = load_dataset("boston_housing")
    assert (data_dir / "housing.data").read_bytes() == (remote / "housing.data").read_bytes()
    assert len(data.train) == 48


def test_failed_download_is_one_clear_error(tmp_path):
    source = Archive("x.tar.gz", (tmp_path / "nowhere" / "x.tar.gz").as_uri())
    with pytest.raises(UserError, match="could not download"):
        fetch(source, tmp_path / "data")


def test_gzip_of_garbage_is_corrupt(tiny_data):
    (tiny_data / "reuters21578.tar.gz").write_bytes(gzip.compress(b"garbage" * 100))
    with pytest.raises(UserError, match="corrupt or truncated"):
        load_dataset("reuters")


def test_cli_datasets_json(tiny_data):
    result = CliRunner().invoke(app, ["datasets", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert set(rows["imdb"]) == {
        "name",
        "task",
        "from",
        "n_train",
        "n_val",
        "n_test",
        "n_classes",
        "n_features",
        "source",
    }
    assert (rows["imdb"]["n_train"], rows["imdb"]["n_val"], rows["imdb"]["n_test"]) == (30, 20, 50)
    assert rows["boston_housing"]["n_features"] == 13
    assert {row["from"] for row in rows.values()} == {"built in"}
    assert rows["reuters"]["source"].startswith("archive found at")
    again = json.loads(CliRunner().invoke(app, ["datasets", "--json", "imdb"]).output)
    assert again[0]["source"] == "cached"


def test_cli_unknown_dataset_exits_2_listing_known(tiny_data):
    result = CliRunner().invoke(app, ["datasets", "mnist"])
    assert result.exit_code == 2
    assert "unknown dataset 'mnist'; known datasets: boston_housing, imdb, reuters" in result.output
    assert "Traceback" not in result.output


def test_vocabulary_comes_from_the_training_split_only(tiny_data):
    # every headline holds a word of its own ("headline17"): with the vocabulary adapted on
    # the training texts, only validation and test rows have out-of-vocabulary words
    options = DataOptions(text=TextSettings(max_tokens=100_000), with_title=True)
    data = load_dataset("reuters", options)
    oov = 0  # TextVectorization's column for out-of-vocabulary words
    assert data.train.x[:, oov].nnz == 0
    assert data.val.x[:, oov].nnz == len(data.val) and data.test.x[:, oov].nnz == len(data.test)


def test_naive_bayes_weights_are_training_log_count_ratios(tiny_data):
    multi_hot = load_dataset("imdb", DataOptions(text=TextSettings(max_tokens=100)))
    nb = load_dataset("imdb", DataOptions(text=TextSettings(max_tokens=100, output_mode="nb")))
    x, y = multi_hot.train.x.toarray(), multi_hot.train.y
    positive, negative = 1 + x[y == 1].sum(axis=0), 1 + x[y == 0].sum(axis=0)
    ratio = np.log((positive / positive.sum()) / (negative / negative.sum()))
    for split in ("train", "val", "test"):
        expected = getattr(multi_hot, split).x.toarray() * ratio
        assert np.allclose(getattr(nb, split).x.toarray(), expected, atol=1e-5)
    assert (ratio > 0).any() and (ratio < 0).any()


def test_a_damaged_cache_file_is_rebuilt_with_one_warning(tiny_data, tmp_path):
    first = load_dataset("imdb")
    (cached,) = list((tmp_path / "cache").glob("imdb-*.npz"))
    cached.write_bytes(cached.read_bytes()[:100])  # a full disk or a killed copy
    with pytest.warns(UserWarning, match="damaged cache file .*imdb-.*: rebuilding it") as caught:
        again = load_dataset("imdb")
    assert len([w for w in caught if "damaged" in str(w.message)]) == 1
    assert (again.train.x != first.train.x).nnz == 0 and (again.test.y == first.test.y).all()
    fitted = datasets.fitted_for(datasets.spec_of("imdb"))  # what a published model needs
    assert len(fitted.vocabulary) == again.n_features
    assert registry_cache_files(tmp_path) == [cached.name]  # rewritten whole, no temporaries


def registry_cache_files(tmp_path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "cache").iterdir() if p.suffix == ".npz")
