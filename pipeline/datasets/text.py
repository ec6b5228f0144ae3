"""Texts to sparse feature matrices with Keras' TextVectorization, cached on disk."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from pipeline import backends

OUTPUT_MODES = ("multi_hot", "count", "tf_idf", "nb")  # bags of words (the mlp family)
SEQUENCE_MODES = ("int", "encoder")  # token ids (embedding family), pretrained encoder vectors
CACHE_VERSION = 3  # 2: vocabulary adapted on train only; 3: archives known by name and size
SOURCES = "sources.json"  # in the cache folder: the size of each archive a cache was made from
_CHUNK = 2048


class NoWords(ValueError):
    """Nothing to learn a vocabulary from: every training text is empty (or punctuation)."""


@dataclass(frozen=True)
class TextSettings:
    """How texts become features; the seeds used the 10,000 most frequent words, multi-hot."""

    max_tokens: int = 10_000
    ngrams: int = 1
    output_mode: str = "multi_hot"
    sequence_length: int = 0  # "int": token ids padded or cut to this length
    encoder: str = ""  # "encoder": a SavedModel folder (or hub URL) mapping texts to vectors

    def __post_init__(self) -> None:
        if self.output_mode not in OUTPUT_MODES + SEQUENCE_MODES:
            raise ValueError(f"output_mode must be one of {OUTPUT_MODES}, not {self.output_mode!r}")
        if self.ngrams not in (1, 2, 3) or self.max_tokens < 2:
            raise ValueError("ngrams must be 1, 2 or 3 and max_tokens at least 2")


def vectorize(
    settings: TextSettings, train: list[str], *others: list[str], labels: np.ndarray | None = None
) -> tuple[list, dict[str, np.ndarray]]:
    """Adapt on `train` only, then turn every list of texts into a float32 CSR matrix (bags
    of words), an int32 array of token ids, or a float32 array of encoder vectors.
    `labels` (of `train`, 0/1): the naive Bayes weights of output mode "nb". Also returns
    what was fitted: the vocabulary and the per-term weights (idf or naive Bayes ratios)."""
    backends.import_tensorflow()  # before Keras: no C++ start-up notes on the user's terminal
    if settings.output_mode == "encoder":
        return encode(settings.encoder, train, *others), {}
    layer = vectorizer(settings)
    layer.adapt(np.array(train, dtype=object), batch_size=_CHUNK)
    fitted = {"vocabulary": np.asarray(layer.get_vocabulary(), dtype=str)}
    if not set(fitted["vocabulary"]) - {"", "[UNK]"}:  # Keras would fail on an empty table
        raise NoWords("the training texts hold no words")
    matrices = [transform_with(layer, texts, settings.output_mode) for texts in (train, *others)]
    if settings.output_mode == "tf_idf":
        matrices, fitted["weights"] = _tf_idf(matrices)
    if settings.output_mode == "nb":
        matrices, fitted["weights"] = _naive_bayes(matrices, labels)
    return matrices, fitted


def vectorizer(settings: TextSettings, vocabulary: list[str] | None = None):
    """Keras' TextVectorization for these settings; with `vocabulary` (as
    `get_vocabulary()` returned it after `adapt`), ready to use without adapting."""
    backends.import_tensorflow()  # TextVectorization needs it, on every backend
    import keras  # deferred: importing Keras costs seconds

    if settings.output_mode == "int":
        reserved = 2  # "" (padding) and "[UNK]"
        arguments = {"output_mode": "int", "output_sequence_length": settings.sequence_length}
    else:
        reserved = 1  # "[UNK]"
        mode = {"tf_idf": "count", "nb": "multi_hot"}.get(settings.output_mode)
        arguments = {"ngrams": settings.ngrams, "output_mode": mode or settings.output_mode}
        arguments["sparse"] = backends.sparse_tensors()  # only TensorFlow's
    if vocabulary is None:
        return keras.layers.TextVectorization(max_tokens=settings.max_tokens, **arguments)
    return keras.layers.TextVectorization(vocabulary=list(vocabulary)[reserved:], **arguments)


def transform_with(layer, texts: list[str], output_mode: str):
    """Texts through an adapted layer: CSR bags of words, or int32 token ids."""
    if output_mode == "int":
        return _in_chunks(lambda part: _numpy(layer(part)).astype("int32"), texts)
    return _transform(layer, texts)


def _naive_bayes(matrices: list[sp.csr_matrix], labels: np.ndarray) -> list[sp.csr_matrix]:
    """Multi-hot features scaled by their log-count ratio on the training split (Wang &
    Manning 2012, the "NB" of NBSVM): how much more often a term occurs in positive than
    in negative texts, with add-one smoothing. Binary labels only."""
    x, y = matrices[0], np.asarray(labels).ravel()
    if set(np.unique(y)) - {0, 1}:
        raise ValueError("output_mode nb needs binary 0/1 labels")
    positive = 1 + np.asarray(x[y == 1].sum(axis=0)).ravel()
    negative = 1 + np.asarray(x[y == 0].sum(axis=0)).ravel()
    ratio = np.log((positive / positive.sum()) / (negative / negative.sum())).astype("float32")
    return [apply_weights(m, "nb", ratio) for m in matrices], ratio


def apply_weights(matrix: sp.csr_matrix, output_mode: str, weights) -> sp.csr_matrix:
    """Bags of words with the per-term weights fitted on the training split: naive Bayes
    ratios (nb), or idf then unit length as scikit-learn's TfidfTransformer (tf_idf)."""
    if output_mode not in ("nb", "tf_idf"):
        return matrix
    weighted = matrix @ sp.diags(weights)
    if output_mode == "tf_idf":
        from sklearn.preprocessing import normalize

        weighted = normalize(weighted)
    return weighted.astype("float32").tocsr()


def _batches(texts: list[str]):
    """The texts as object arrays of at most _CHUNK, the input TextVectorization takes."""
    for start in range(0, len(texts), _CHUNK):
        yield np.array(texts[start : start + _CHUNK], dtype=object)


def _in_chunks(call, texts: list[str]) -> np.ndarray:
    return np.concatenate([call(batch) for batch in _batches(texts)])


def encode(encoder: str, *texts: list[str]) -> list[np.ndarray]:
    """Texts to vectors with a pretrained SavedModel text encoder (a TF Hub-style model that
    maps a batch of strings to a batch of vectors), frozen: computed once, then cached."""
    import tensorflow as tf

    model = tf.saved_model.load(encoder_path(encoder))
    if callable(model):
        call = model
    else:  # only a serving signature: call it with its one input, take its one output
        signature = model.signatures["serving_default"]
        name = next(iter(signature.structured_input_signature[1]))
        call = lambda batch: next(iter(signature(**{name: batch}).values()))  # noqa: E731
    return [
        _in_chunks(lambda part: np.asarray(call(tf.constant(part)), "float32"), t) for t in texts
    ]


def encoder_path(encoder: str) -> str:
    """A local SavedModel folder, or a TF Hub / Kaggle handle downloaded (once) as a tar.gz."""
    if encoder.startswith(("http://", "https://")):
        import keras

        url = encoder + ("&" if "?" in encoder else "?") + "tf-hub-format=compressed"
        name = hashlib.sha256(encoder.encode()).hexdigest()[:16]
        return keras.utils.get_file(f"encoder-{name}", url, extract=True, cache_subdir="encoders")
    return encoder


def fingerprint(paths) -> str:
    """Changes when any of the files is added, removed, resized or touched."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        stat = path.stat()
        digest.update(f"{path}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _transform(layer, texts: list[str]) -> sp.csr_matrix:
    width = layer.vocabulary_size()
    chunks = [_to_csr(layer(batch), width) for batch in _batches(texts)]
    return sp.vstack(chunks, format="csr") if chunks else sp.csr_matrix((0, width), "float32")


def _numpy(tensor) -> np.ndarray:
    import keras

    return keras.ops.convert_to_numpy(tensor)


def _to_csr(tensor, width: int) -> sp.csr_matrix:
    """A chunk of bags of words as CSR: from TensorFlow's SparseTensor, or (on the other
    backends, where TextVectorization gives dense rows) from a dense array."""
    if not hasattr(tensor, "indices"):
        return sp.csr_matrix(_numpy(tensor).astype("float32"), shape=(len(tensor), width))
    indices = tensor.indices.numpy()
    values = tensor.values.numpy().astype("float32")
    shape = (int(tensor.dense_shape[0]), width)
    return sp.csr_matrix((values, (indices[:, 0], indices[:, 1])), shape=shape)


def _tf_idf(matrices: list[sp.csr_matrix]) -> list[sp.csr_matrix]:
    from sklearn.feature_extraction.text import TfidfTransformer

    idf = TfidfTransformer().fit(matrices[0]).idf_.astype("float32")
    return [apply_weights(m, "tf_idf", idf) for m in matrices], idf


# --- cache -------------------------------------------------------------------------------


def cache_dir(data_dir: Path) -> Path:
    """`PIPELINE_CACHE_DIR`, else a `pipeline-cache` folder inside the data folder."""
    return Path(os.environ.get("PIPELINE_CACHE_DIR") or data_dir / "pipeline-cache")


def cache_path(data_dir: Path, dataset: str, source: Path, **settings) -> Path:
    """A file name that changes whenever the settings, the source or this code change."""
    key = {"v": CACHE_VERSION, "source": source_identity(data_dir, source), **settings}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
    return cache_dir(data_dir) / f"{dataset}-{digest[:16]}.npz"


def source_identity(data_dir: Path, source: Path) -> list:
    """An archive by its name and size: a copy elsewhere (another machine, another folder)
    keeps its cache, another release or a cut download does not. Recorded in the cache
    folder, so that the cache alone can stand in for an archive that is not there (a GPU
    machine without TensorFlow, which vectorizing raw text needs). A folder of files (an
    unpacked archive, a user's texts) by its path, size and time, as it can change inside."""
    if source.is_dir():
        stat = source.stat()
        return [str(source), stat.st_size, stat.st_mtime_ns]
    records = _read_sources(data_dir)
    if source.is_file():
        size = source.stat().st_size
        if records.get(source.name) != size:
            _write_sources(data_dir, records | {source.name: size})
    elif source.name in records:
        size = records[source.name]
    else:
        raise FileNotFoundError(f"{source} not found, and no cache was made from it")
    return [source.name, size]


def stands_in(data_dir: Path, archive: str) -> bool:
    """Was a cache made from `archive` (a file name) here, so that it can stand in for it?"""
    return archive in _read_sources(data_dir)


def _read_sources(data_dir: Path) -> dict[str, int]:
    try:
        return json.loads((cache_dir(data_dir) / SOURCES).read_text())
    except (OSError, ValueError):
        return {}


def _write_sources(data_dir: Path, records: dict[str, int]) -> None:
    path = cache_dir(data_dir) / SOURCES
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{SOURCES}.{os.getpid()}.tmp")
        partial.write_text(json.dumps(records, sort_keys=True))
        partial.replace(path)
    except OSError:
        pass  # an unwritable cache folder: no cache either (`_write_npz` warns once)


def settings_key(settings: TextSettings) -> dict:
    return asdict(settings)


def save_splits(path: Path, splits: dict[str, tuple[sp.csr_matrix, np.ndarray]]) -> bool:
    """Write atomically; an unwritable folder gives one warning and no cache."""
    arrays = {}
    for name, (x, y) in splits.items():
        if isinstance(x, np.ndarray):
            arrays |= {f"{name}_x": x, f"{name}_y": y}
            continue
        arrays |= {
            f"{name}_data": x.data,
            f"{name}_indices": x.indices,
            f"{name}_indptr": x.indptr,
            f"{name}_shape": np.array(x.shape),
            f"{name}_y": y,
        }
    return _write_npz(path, arrays)


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> bool:
    """Write atomically (a temporary file renamed into place); an unwritable folder gives
    one warning and no cache."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as tmp:
            np.savez(tmp, **arrays)
        os.chmod(tmp.name, 0o644)
        os.replace(tmp.name, path)
        return True
    except OSError as error:
        warnings.warn(f"not caching vectorized data in {path.parent}: {error}", stacklevel=3)
        return False


def fitted_path(path: Path) -> Path:
    """Beside a cached matrix file: what its features were fitted with."""
    return path.with_name(path.stem + ".fitted")


def save_fitted(path: Path, fitted: dict[str, np.ndarray]) -> bool:
    return _write_npz(fitted_path(path), fitted)


def load_fitted(path: Path) -> dict[str, np.ndarray] | None:
    try:
        with open(fitted_path(path), "rb") as handle, np.load(handle) as npz:
            return {key: npz[key] for key in npz.files}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None  # missing or damaged: rebuilt by whoever needs it


def load_splits(path: Path) -> dict[str, tuple] | None:
    """The cached splits, or None when there is no cache file or it is damaged (a full disk
    or a killed copy): the cache is derived data, so it is rebuilt, with one warning."""
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as handle, np.load(handle) as npz:  # closed even when damaged
            names = {key.rsplit("_", 1)[0] for key in npz.files}
            return {name: (_features(npz, name), npz[f"{name}_y"]) for name in names}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        warnings.warn(f"damaged cache file {path} ({error}): rebuilding it", stacklevel=2)
        return None


def _features(npz, name: str):
    if f"{name}_x" in npz.files:
        return npz[f"{name}_x"]
    parts = (npz[f"{name}_data"], npz[f"{name}_indices"], npz[f"{name}_indptr"])
    return sp.csr_matrix(parts, shape=tuple(npz[f"{name}_shape"]))


def replace_all(texts: list[str], replacements: tuple[tuple[str, str], ...]) -> list[str]:
    """Texts with each (old, new) replacement made, in order: a dataset's peculiarities
    (IMDB's "<br />" tags), made alike when training and when predicting."""
    for old, new in replacements:
        texts = [t.replace(old, new) for t in texts]
    return texts
