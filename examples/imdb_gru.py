"""A bidirectional GRU over token ids, written as Keras Tuner writes a model: a
`build_model(hp)` that declares its own search space as it builds, and compiles itself.

    pipeline search imdb --space search_spaces/imdb-gru.yaml

`hp` asks the Optuna trial for each value (the first trial takes each call's `default=`);
the model's own `compile` is kept. The space file gives only the data and the budget."""

import keras
from keras import layers


def build_model(hp):
    model = keras.Sequential()
    model.add(layers.Embedding(10000, hp.Choice("emb_dim", [16, 32, 64], default=32)))
    model.add(layers.Bidirectional(layers.GRU(hp.Int("rnn_units", 8, 64, step=8, default=16))))
    if hp.Boolean("dense_head"):
        with hp.conditional_scope("dense_head", [True]):
            model.add(layers.Dense(hp.Int("head_units", 8, 64, step=8), activation="relu"))
    model.add(layers.Dropout(hp.Float("dropout", 0.0, 0.5, step=0.1, default=0.2)))
    model.add(layers.Dense(1, activation="sigmoid"))
    rate = hp.Float("learning_rate", 3e-4, 3e-3, sampling="log", default=1e-3)
    model.compile(optimizer=keras.optimizers.Adam(rate), loss="binary_crossentropy")
    return model
