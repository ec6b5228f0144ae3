"""What a configuration may hold: every key, with its type and its range or named choices
(one table, `KEYS`, from which the other lists are drawn), the losses of each task, the
model families, and the keys a space file may have. `models.py` and `params.py` read it."""

from __future__ import annotations

import math
from dataclasses import dataclass

from pipeline.datasets.text import OUTPUT_MODES

TASK_LOSSES = {
    "binary": ("binary_crossentropy", "mse"),
    "multiclass": ("categorical_crossentropy", "sparse_categorical_crossentropy"),
    "regression": ("mse", "mae", "huber"),
}
LOSSES = tuple(sorted({loss for losses in TASK_LOSSES.values() for loss in losses}))
OPTIMIZERS = ("rmsprop", "adam", "sgd")
ACTIVATIONS = ("relu", "tanh", "elu", "selu", "gelu", "sigmoid")
FAMILIES = ("mlp", "embedding")  # built in; a space of `family: custom` names its builder
CUSTOM = "custom"
# what a custom space's builder receives: token ids, a bag of words, a table's rows, or the
# arrays given from Python (`pipeline.search(x=..., y=...)`), as they are
REPRESENTATIONS = ("token_ids", *OUTPUT_MODES, "table", "arrays")


@dataclass(frozen=True)
class Key:
    """What one key of a configuration may hold: a number in a range, one of named choices,
    a unit count per layer, or a saved model."""

    kind: str = "int"  # "int" | "float" | "choice" | "units" | "saved_model"
    low: float = 0  # a number's range
    high: float = math.inf
    low_included: bool = True
    high_included: bool = True
    choices: tuple = ()  # a "choice" key's named choices
    family: str | None = None  # the one built-in family that uses it; a trial of another drops it
    feature: bool = False  # it shapes the features (the representation), not the network

    def holds(self, number: float) -> bool:
        """Whether `number` lies in the range."""
        above = self.low <= number if self.low_included else self.low < number
        below = number <= self.high if self.high_included else number < self.high
        return above and below

    def range_words(self, name: str) -> str:
        """The range as an error says it: "at least 1", "greater than 0", "0 <= dropout < 1"."""
        if self.high == math.inf:
            return f"at least {self.low}" if self.low_included else f"greater than {self.low}"
        low = "<=" if self.low_included else "<"
        high = "<=" if self.high_included else "<"
        return f"{self.low} {low} {name} {high} {self.high}"


KEYS = {  # in the order an error lists them
    "family": Key("choice", choices=(*FAMILIES, CUSTOM)),  # custom: set by a custom space only
    "embedding_dim": Key(low=1, family="embedding"),
    "pooling": Key("choice", choices=("average", "max"), family="embedding"),
    "n_layers": Key(low=1),
    "units": Key("units"),
    "activation": Key("choice", choices=ACTIVATIONS),
    "dropout": Key("float", high=1, high_included=False),
    "loss": Key("choice", choices=LOSSES),
    "optimizer": Key("choice", choices=OPTIMIZERS),
    "learning_rate": Key("float", low_included=False),
    "epochs": Key(low=1),
    "batch_size": Key(low=1),
    "early_stopping_patience": Key(),
    "max_tokens": Key(low=2, feature=True),
    "ngrams": Key("choice", choices=(1, 2, 3), family="mlp", feature=True),
    "output_mode": Key("choice", choices=OUTPUT_MODES, family="mlp", feature=True),
    "with_title": Key("choice", choices=(False, True), feature=True),
    "sequence_length": Key(low=1, family="embedding", feature=True),
    "encoder": Key("saved_model", family="embedding", feature=True),
}
PARAMS = tuple(KEYS)
FLOATS = tuple(name for name, key in KEYS.items() if key.kind == "float")
NAMED_CHOICES = {name: key.choices for name, key in KEYS.items() if key.kind == "choice"}
REPRESENTATION = tuple(name for name, key in KEYS.items() if key.feature)  # the features
FAMILY_PARAMS = {  # params only one model family uses
    family: tuple(name for name, key in KEYS.items() if key.family == family) for family in FAMILIES
}

REQUIRED = ("units", "loss", "epochs", "batch_size")
CUSTOM_REQUIRED = ("loss", "epochs", "batch_size")  # a custom builder may need no units
DEFAULT_LOSS = {  # when a space leaves the loss out (a space for any text dataset)
    "binary": "binary_crossentropy",
    "multiclass": "sparse_categorical_crossentropy",
    "regression": "mse",
}

# the keys of a space file: at its top level, a custom space's there, and a search entry's
TOP_KEYS = ("dataset", "description", "defaults", "search", "warm_start")
CUSTOM_KEYS = ("family", "builder", "representation", "code")
KIND_KEYS = {
    "int": {"low", "high", "step", "log"},
    "float": {"low", "high", "step", "log"},
    "categorical": {"choices"},
}
