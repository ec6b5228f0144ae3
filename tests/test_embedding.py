"""The embedding model family: token ids, Embedding, pooling; and pretrained SavedModel
encoders (a tiny one built here); a space that searches over both families."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from mlflow.tracking import MlflowClient

from pipeline import engine, spaces
from pipeline.datasets import DataOptions, TextSettings, load_dataset, text
from pipeline.models import build_model
from tests.conftest import TINY_SPACE, runs_of, space_file

EMBEDDING = {
    "family": "embedding",
    "max_tokens": 50,
    "sequence_length": 12,
    "embedding_dim": 6,
    "units": [4],
    "loss": "binary_crossentropy",
}


@pytest.mark.parametrize(
    ("pooling", "layer"), [("average", "GlobalAveragePooling1D"), ("max", "GlobalMaxPooling1D")]
)
def test_embedding_model_layers_and_sizes(pooling, layer):
    model = build_model(EMBEDDING | {"pooling": pooling}, "binary", n_features=12)
    assert type(model.get_layer("pooling")).__name__ == layer
    embedding = model.get_layer("embedding")
    assert embedding.input_dim == 50 and embedding.output_dim == 6
    assert embedding.mask_zero == (pooling == "average")
    assert model.count_params() == 50 * 6 + (6 * 4 + 4) + (4 + 1)
    out = model(np.array([[3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]], dtype="int32"))
    assert out.shape == (1, 1)


def test_average_pooling_ignores_padding():
    """The same two tokens padded to 12 and to 30 ids: one prediction (the mask drops the
    zeros; without it the mean would be diluted by the padding's embedding)."""
    model = build_model(EMBEDDING | {"pooling": "average"}, "binary", n_features=12)
    longer = build_model(EMBEDDING | {"pooling": "average"}, "binary", n_features=30)
    longer.set_weights(model.get_weights())
    short = np.array([[3, 4] + [0] * 10], dtype="int32")
    padded_more = np.array([[3, 4] + [0] * 28], dtype="int32")
    assert np.allclose(model(short), longer(padded_more), atol=1e-6)
    pooled = keras.Model(model.input, model.get_layer("pooling").output)
    table = model.get_layer("embedding").embeddings.numpy()
    assert np.allclose(pooled(short)[0], table[[3, 4]].mean(axis=0), atol=1e-6)


def test_token_id_sequences_are_cached_per_length(tiny_data):
    data = load_dataset(
        "imdb", DataOptions(text=TextSettings(100, output_mode="int", sequence_length=20))
    )
    assert data.train.x.dtype == np.int32 and data.train.x.shape == (30, 20)
    assert data.train.x.max() < 100 and (data.train.x == 0).any()  # padded with 0
    again = load_dataset(
        "imdb", DataOptions(text=TextSettings(100, output_mode="int", sequence_length=20))
    )
    assert np.array_equal(again.test.x, data.test.x)
    assert len(list((tiny_data.parent / "cache").glob("imdb-*.npz"))) == 1


class TinyEncoder(tf.Module):
    """A hub-style text encoder: words hashed into 16 buckets, 3-d vectors averaged."""

    def __init__(self) -> None:
        super().__init__()
        rng = np.random.RandomState(0)
        self.table = tf.Variable(rng.normal(size=(16, 3)).astype("float32"))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, texts):
        ids = tf.strings.to_hash_bucket_fast(tf.strings.split(texts), 16)
        vectors = tf.ragged.map_flat_values(lambda i: tf.gather(self.table, i), ids)
        return tf.reduce_mean(vectors, axis=1)


@pytest.fixture(scope="module")
def encoder(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("encoder") / "tiny_savedmodel"
    module = TinyEncoder()
    tf.saved_model.save(module, str(path))
    return path


def test_encoder_vectors_are_the_saved_models_output(tiny_data, encoder):
    options = DataOptions(text=TextSettings(output_mode="encoder", encoder=str(encoder)))
    data = load_dataset("imdb", options)
    assert data.train.x.shape == (30, 3) and data.train.x.dtype == np.float32
    from pipeline.datasets.builtin import imdb

    raw = imdb.read_reviews(tiny_data / "aclImdb_v1.tar.gz")["test"][0][0]
    (first_test_review,) = text.replace_all([raw], imdb.DATASET.replacements)
    expected = tf.saved_model.load(str(encoder))(tf.constant([first_test_review]))
    assert np.allclose(data.test.x[0], expected.numpy()[0], atol=1e-6)


def test_cli_train_with_a_local_encoder(tiny_data, stores, encoder):
    from typer.testing import CliRunner

    from pipeline.cli import app

    args = ["train", "imdb", "family=embedding", f"encoder={encoder}", "units=4", "epochs=2"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    runs, _ = runs_of(stores["tracking"], "imdb")
    params = runs[0].data.params
    assert params["encoder"] == str(encoder) and "output_mode" not in params
    # a 3-d encoder vector into the seed's two hidden layers of 4, then 1 output
    assert float(runs[0].data.tags["n_params"]) == (3 * 4 + 4) + (4 * 4 + 4) + (4 + 1)


def test_a_space_can_search_both_families(tiny_data, stores, tmp_path):
    raw = {
        "defaults": {
            **TINY_SPACE["defaults"],
            "max_tokens": 100,
            "ngrams": 1,
            "output_mode": "multi_hot",
        },
        "search": {
            "family": {"type": "categorical", "choices": ["mlp", "embedding"]},
            "embedding_dim": {"type": "int", "low": 2, "high": 8},
            "pooling": {"type": "categorical", "choices": ["average", "max"]},
            "sequence_length": {"type": "categorical", "choices": [10, 30]},
            "output_mode": {"type": "categorical", "choices": ["multi_hot", "count"]},
        },
    }
    cfg = engine.SearchJob(
        dataset="imdb", space=space_file(tmp_path, raw), n_trials=6, sampler="random", pruner="none"
    )
    outcome = engine.search(cfg)
    families = {t.params["family"] for t in outcome.study.trials}
    assert families == {"mlp", "embedding"}
    for trial in outcome.study.trials:
        only = spaces.FAMILY_PARAMS["mlp" if trial.params["family"] == "embedding" else "embedding"]
        assert not set(only) & set(trial.params)  # the other family's params: not sampled
    _, children = runs_of(stores["tracking"], "imdb")
    client = MlflowClient(tracking_uri=stores["tracking"])
    for run in children:
        summary = client.download_artifacts(run.info.run_id, "model_summary.txt", str(tmp_path))
        has_embedding = "embedding" in Path(summary).read_text()
        assert has_embedding == (run.data.params["family"] == "embedding")
