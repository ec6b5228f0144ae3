"""The end-to-end model: raw texts (or rows of raw feature values) in, labels with their
probability (or predicted values) out. A bundle folder holds the trained Keras network and
everything its features were fitted with on the training split."""

from __future__ import annotations

import hashlib
import importlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import backends
from pipeline.datasets import Fitted, TextSettings, tabular

MODEL, SETTINGS, ARRAYS, ENCODER = "model.keras", "preprocessing.json", "fitted.npz", "encoder"
CODE = "code"  # the user's builder files, in a bundle
ENSEMBLE = "ensemble.json"  # in an ensemble's folder: its members' folders and weights
TEXT_COLUMN = "text"
TEXT_EXAMPLES = ("A wonderful, moving film.", "Two hours I will never get back.")


def save_bundle(
    folder: Path, model_path: Path, fitted: Fitted, task: str, classes, modules=(), files=()
) -> Path:
    """Write the network and what it needs to read raw input into `folder`. `modules`: the
    user's code to import before the network loads (its custom layers); `files`: that
    code, copied into the bundle's `code/` folder so that the bundle loads anywhere."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(model_path, folder / MODEL)
    for file in files:
        (folder / CODE).mkdir(exist_ok=True)
        shutil.copy(file, folder / CODE / Path(file).name)
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
    np.savez_compressed(folder / ARRAYS, **arrays)  # a vocabulary of bigrams: 28.8 MB -> 1.8 MB
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
        if (folder / CODE).is_dir() and str(folder / CODE) not in sys.path:
            sys.path.append(str(folder / CODE))  # after MLflow's code_paths, if it has them
        for module in settings.get("code", ()):  # the user's layers register themselves
            importlib.import_module(module)
        self.model = keras.models.load_model(
            folder / MODEL, custom_objects=CUSTOM_OBJECTS, compile=False
        )  # inference only
        self._layer = None

        self.key = _features_key(settings, self.arrays)

    def predict(self, inputs) -> pd.DataFrame:
        """Labels and their probability (classification) or predicted values (regression)."""
        return predictions_frame(self.scores(self.features(inputs)), self.task, self.classes)

    def scores(self, features) -> np.ndarray:
        """The network's output for `features`: class probabilities, or values."""
        from pipeline.evaluation import probabilities

        return probabilities(self.model, features)

    def output_form(self, n: int) -> pd.DataFrame:
        """A frame of `n` rows shaped as `predict`'s (placeholder values): the signature of a
        text model logged where TensorFlow, which reads raw text, is not installed."""
        return output_form(n, self.task, self.classes)

    def example(self) -> pd.DataFrame | np.ndarray:
        """Two raw inputs, as the signature of the logged model shows them: texts, rows of
        raw feature values (the training means), or two arrays of zeros shaped as `x`."""
        if self.array is not None:
            return np.zeros((2, *self.array["shape"]), dtype=self.array["dtype"])
        if self.text is not None:
            return pd.DataFrame({TEXT_COLUMN: list(TEXT_EXAMPLES)})
        return self.table.example()

    def features(self, inputs):
        """Raw input as the network's features, fitted on the training split."""
        return self.finish(self.shared(inputs))

    def shared(self, inputs):
        """The part of reading raw input that bundles with the same `key` share: arrays
        reshaped, a table encoded, texts tokenized into token ids or bags of words."""
        if self.array is not None:
            rows = np.asarray(inputs, dtype=self.array["dtype"])
            return rows.reshape(-1, *self.array["shape"])
        if self.text is None:
            frame = inputs if isinstance(inputs, pd.DataFrame) else pd.DataFrame(inputs)
            return self.table.transform(frame)
        from pipeline.datasets import text

        texts = text.replace_all(texts_of(inputs), self.replacements)  # as in training
        if self.text.output_mode == "encoder":
            return text.encode(self.text.encoder, texts)[0]
        return text.transform_with(self._vectorizer(), texts, self.text.output_mode)

    def finish(self, shared):
        """`shared` as this network's features: bags of words with its own term weights
        (naive Bayes ratios, idf), else as they are."""
        if self.text is None or self.text.output_mode in ("int", "encoder"):
            return shared
        from pipeline.datasets import text

        return text.apply_weights(shared, self.text.output_mode, self.arrays.get("weights"))

    def _vectorizer(self):
        if self._layer is None:
            from pipeline.datasets import text

            self._layer = text.vectorizer(self.text, list(self.arrays["vocabulary"]))
        return self._layer


def predictions_frame(scores: np.ndarray, task: str, classes: tuple) -> pd.DataFrame:
    """A network's (or an ensemble's) output as `predict` returns it: a label and its
    probability, and every class's, or a value."""
    if task == "regression":
        return pd.DataFrame({"value": scores[:, 0].astype(float)})
    if task == "binary":
        positive = scores[:, 0].astype(float)
        index = (positive > 0.5).astype(int)
        chosen = np.where(index == 1, positive, 1 - positive)
        table = np.stack([1 - positive, positive], axis=1)
    else:
        index, table = scores.argmax(axis=1), scores.astype(float)
        chosen = table[np.arange(len(index)), index]
    frame = pd.DataFrame({"label": [classes[i] for i in index], "probability": chosen})
    for i, name in enumerate(classes):
        frame[f"p_{name}"] = table[:, i]
    return frame


def output_form(n: int, task: str, classes: tuple) -> pd.DataFrame:
    """A frame of `n` rows shaped as `predict`'s, with placeholder values."""
    if task == "regression":
        return pd.DataFrame({"value": np.zeros(n)})
    frame = pd.DataFrame({"label": [classes[0]] * n, "probability": np.ones(n)})
    for name in classes:
        frame[f"p_{name}"] = np.full(n, 1 / len(classes))
    return frame


def _features_key(settings: dict, arrays: dict) -> str:
    """Equal for two bundles whose raw input is read alike up to their own term weights
    (`Predictor.shared`): the same replacements, the same tokenization of the same
    vocabulary (multi-hot for both `multi_hot` and `nb`, counts for `tf_idf`), or the same
    table encoding. An ensemble's members that share it tokenize each text once."""
    text = dict(settings.get("text") or {})
    if text.get("output_mode") in LAYER_MODES:
        text["output_mode"] = LAYER_MODES[text["output_mode"]]
    digest = hashlib.sha256()
    for part in (text, settings.get("table"), settings.get("replacements"), settings.get("array")):
        digest.update(json.dumps(part, sort_keys=True).encode())
    digest.update(np.asarray(arrays.get("vocabulary", ())).tobytes())
    return digest.hexdigest()


LAYER_MODES = {"nb": "multi_hot", "tf_idf": "count"}  # TextVectorization's output for each


# --- ensembles ----------------------------------------------------------------------------


def save_ensemble(folder: Path, members: list[tuple[Path, float, dict]]) -> Path:
    """Write an ensemble: each member's bundle (`members`: its folder, its weight, what
    to say about it) in a folder of its own, and `ensemble.json`."""
    folder.mkdir(parents=True, exist_ok=True)
    listed = []
    for i, (bundle, weight, about) in enumerate(members):
        name = f"member-{i}"
        shutil.copytree(bundle, folder / name)
        listed.append({"folder": name, "weight": float(weight), **about})
    first = json.loads((members[0][0] / SETTINGS).read_text())
    about = {"task": first["task"], "class_names": first["class_names"], "members": listed}
    (folder / ENSEMBLE).write_text(json.dumps(about, indent=1))
    return folder


def load(folder: Path):
    """The predictor of a bundle's folder: an ensemble's (`EnsemblePredictor`) or one
    network's (`Predictor`)."""
    folder = Path(folder)
    return EnsemblePredictor(folder) if (folder / ENSEMBLE).is_file() else Predictor(folder)


class EnsemblePredictor:
    """An ensemble of bundles: their outputs (probabilities, or values) averaged with their
    weights. Members that read raw input into the same features share one vectorization:
    for texts it costs more than the networks' forward passes."""

    def __init__(self, folder: Path) -> None:
        about = json.loads((Path(folder) / ENSEMBLE).read_text())
        self.task, self.classes = about["task"], tuple(about["class_names"])
        self.members = [Predictor(Path(folder) / m["folder"]) for m in about["members"]]
        self.weights = [m["weight"] for m in about["members"]]
        self.about = about["members"]

    @property
    def model(self):
        """The Keras network of the member with the largest weight."""
        return self.members[int(np.argmax(self.weights))].model

    def predict(self, inputs) -> pd.DataFrame:
        features: dict[str, object] = {}
        total = 0.0
        for member, weight in zip(self.members, self.weights, strict=True):
            if member.key not in features:
                features[member.key] = member.shared(inputs)
            scores = member.scores(member.finish(features[member.key]))
            total = total + weight * scores.astype(np.float64)
        return predictions_frame(total / sum(self.weights), self.task, self.classes)

    def output_form(self, n: int) -> pd.DataFrame:
        return output_form(n, self.task, self.classes)

    def example(self) -> pd.DataFrame | np.ndarray:
        return self.members[0].example()


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
