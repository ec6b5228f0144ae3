"""The end-to-end model: raw texts (or rows of raw feature values) in, labels with their
probability (or predicted values) out. A bundle folder holds the trained Keras network and
everything its features were fitted with on the training split."""

from __future__ import annotations

import importlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import backends
from pipeline.datasets import Fitted, TextSettings, tabular

MODEL, SETTINGS, ARRAYS, ENCODER = "model.keras", "preprocessing.json", "fitted.npz", "encoder"
TEXT_COLUMN = "text"


def save_bundle(
    folder: Path, model_path: Path, fitted: Fitted, task: str, classes, modules=()
) -> Path:
    """Write the network and what it needs to read raw input into `folder`. `modules`: the
    user's code to import before the network loads (its custom layers), shipped beside."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(model_path, folder / MODEL)
    text = fitted.text
    settings = {
        "task": task,
        "class_names": list(classes),
        "table": None if fitted.table is None else fitted.table.to_json(),
        "replacements": [list(pair) for pair in fitted.replacements],
        "text": None if text is None else {**text.__dict__, "encoder": ""},
        "code": list(modules),
        "array": None if fitted.example is None else _array_form(fitted.example),
    }
    if text is not None and text.encoder:
        shutil.copytree(text.encoder, folder / ENCODER)
        settings["text"]["encoder"] = ENCODER
    (folder / SETTINGS).write_text(json.dumps(settings, indent=1))
    arrays = {
        name: value
        for name, value in (
            ("vocabulary", np.asarray(fitted.vocabulary, dtype=str)),
            ("weights", fitted.weights),
        )
        if value is not None
    }
    np.savez(folder / ARRAYS, **arrays)
    return folder


def _array_form(example: np.ndarray) -> dict:
    """What arrays the network takes: one row's shape and the dtype, as `x` held them."""
    return {"shape": list(example.shape[1:]), "dtype": str(example.dtype)}


class Predictor:
    """A loaded bundle; `predict` takes texts, or a frame of raw feature columns."""

    def __init__(self, folder: Path) -> None:
        backends.quiet_tensorflow()  # before Keras: its start-up notes kept quiet
        import keras

        from pipeline.models import CUSTOM_OBJECTS

        folder = Path(folder)
        settings = json.loads((folder / SETTINGS).read_text())
        self.task, self.classes = settings["task"], tuple(settings["class_names"])
        self.table = settings["table"] and tabular.Encoding.from_json(settings["table"])
        self.replacements = tuple(tuple(pair) for pair in settings.get("replacements", ()))
        self.array = settings.get("array")  # arrays in, as given from Python
        if settings.get("clean_breaks"):  # a bundle written before datasets declared theirs
            self.replacements = (("<br />", " "),)
        with np.load(folder / ARRAYS) as arrays:
            self.arrays = {k: arrays[k] for k in arrays.files}
        self.text = None
        if settings["text"] is not None:
            raw = settings["text"]
            raw["encoder"] = str(folder / raw["encoder"]) if raw["encoder"] else ""
            self.text = TextSettings(**raw)
        for module in settings.get("code", ()):  # the user's layers register themselves
            importlib.import_module(module)
        self.model = keras.models.load_model(
            folder / MODEL, custom_objects=CUSTOM_OBJECTS, compile=False
        )  # inference only
        self._layer = None

    def predict(self, inputs) -> pd.DataFrame:
        """Labels and their probability (classification) or predicted values (regression)."""
        from pipeline.evaluation import probabilities

        scores = probabilities(self.model, self.features(inputs))
        if self.task == "regression":
            return pd.DataFrame({"value": scores[:, 0].astype(float)})
        if self.task == "binary":
            positive = scores[:, 0].astype(float)
            index = (positive > 0.5).astype(int)
            chosen = np.where(index == 1, positive, 1 - positive)
            table = np.stack([1 - positive, positive], axis=1)
        else:
            index, table = scores.argmax(axis=1), scores.astype(float)
            chosen = table[np.arange(len(index)), index]
        frame = pd.DataFrame({"label": [self.classes[i] for i in index], "probability": chosen})
        for i, name in enumerate(self.classes):
            frame[f"p_{name}"] = table[:, i]
        return frame

    def output_form(self, n: int) -> pd.DataFrame:
        """A frame of `n` rows shaped as `predict`'s (placeholder values): the signature of a
        text model logged where TensorFlow, which reads raw text, is not installed."""
        if self.task == "regression":
            return pd.DataFrame({"value": np.zeros(n)})
        frame = pd.DataFrame({"label": [self.classes[0]] * n, "probability": np.ones(n)})
        for name in self.classes:
            frame[f"p_{name}"] = np.full(n, 1 / len(self.classes))
        return frame

    def features(self, inputs):
        """Raw input as the network's features, fitted on the training split."""
        if self.array is not None:
            rows = np.asarray(inputs, dtype=self.array["dtype"])
            return rows.reshape(-1, *self.array["shape"])
        if self.text is None:
            frame = inputs if isinstance(inputs, pd.DataFrame) else pd.DataFrame(inputs)
            return self.table.transform(frame)
        return self._vectorize(texts_of(inputs))

    def _vectorize(self, texts: list[str]):
        from pipeline.datasets import text

        texts = text.replace_all(texts, self.replacements)  # as the training texts were
        if self.text.output_mode == "encoder":
            return text.encode(self.text.encoder, texts)[0]
        matrix = text.transform_with(self._vectorizer(), texts, self.text.output_mode)
        return text.apply_weights(matrix, self.text.output_mode, self.arrays.get("weights"))

    def _vectorizer(self):
        if self._layer is None:
            from pipeline.datasets import text

            self._layer = text.vectorizer(self.text, list(self.arrays["vocabulary"]))
        return self._layer


def texts_of(inputs) -> list[str]:
    """A list of strings, a Series, or a frame with a `text` column (MLflow serving)."""
    if isinstance(inputs, pd.DataFrame):
        if TEXT_COLUMN in inputs.columns:
            return [str(t) for t in inputs[TEXT_COLUMN]]
        if inputs.shape[1] == 1:
            return [str(t) for t in inputs.iloc[:, 0]]
        raise ValueError(f"expected a {TEXT_COLUMN!r} column, got {', '.join(inputs.columns)}")
    if isinstance(inputs, str):
        return [inputs]
    return [str(t) for t in inputs]
