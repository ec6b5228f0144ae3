"""A small Conv1D over token ids: your own Keras model searched by `pipeline`.

    pipeline search imdb --space search_spaces/imdb-cnn.yaml

`build(params, inputs)` gets the trial's parameters as a plain dict (the space's defaults
with what Optuna sampled) and the Keras input: here token ids, as the space's
`representation: token_ids` asks. It returns the last hidden tensor; pipeline adds the
output layer of the task, the loss, the optimizer and the metric. (It may return a whole
`keras.Model` instead, whose output must then fit the task.)"""

import keras


def build(params: dict, inputs: keras.KerasTensor) -> keras.KerasTensor:
    x = keras.layers.Embedding(params["max_tokens"], params["embedding_dim"])(inputs)
    x = keras.layers.Conv1D(params["filters"], params["kernel_size"], activation="relu")(x)
    x = keras.layers.GlobalMaxPooling1D()(x)
    return keras.layers.Dropout(params["dropout"])(x)
