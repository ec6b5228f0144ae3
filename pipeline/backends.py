"""Keras backends: which one a process trains on (TensorFlow by default, JAX or PyTorch on
request), and the few things that differ between them: sparse rows, batches, seeds,
threads and devices. Every other module is backend-neutral and asks here.

Keras reads its backend once, when it is first imported: `select` must run before that, in
the CLI and in every worker process. TensorFlow is imported only on its own backend (and
to vectorize raw text, which `TextVectorization` needs it for)."""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import random
import shutil
import sys
import weakref
from typing import Any

import numpy as np

from pipeline.errors import UserError

NAMES = ("tensorflow", "jax", "torch")
DEFAULT = "tensorflow"
INSTALL = {  # what a user runs when a backend's package is missing
    "tensorflow": "pip install tensorflow",
    "jax": "pip install 'pipeline[jax]'",
    "torch": "pip install 'pipeline[torch]'",
}


def chosen(option: str | None = None) -> str:
    """`--backend`, else KERAS_BACKEND, else TensorFlow; one line if unknown or missing."""
    name = (option or os.environ.get("KERAS_BACKEND") or DEFAULT).strip().lower()
    if name not in NAMES:
        raise UserError(f"unknown Keras backend {name!r}; use one of {', '.join(NAMES)}")
    if importlib.util.find_spec(name) is None:
        raise UserError(f"the {name} backend needs the {name} package: {INSTALL[name]}")
    return name


def select(name: str) -> None:
    """Train on `name` in this process: before Keras is imported, or with Keras already on
    it (a notebook that imported Keras on another backend must restart its kernel)."""
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != name:
            raise UserError(
                f"Keras is already running on {keras.backend.backend()} in this process, "
                f"not {name}: set KERAS_BACKEND={name} before importing Keras"
            )
    os.environ["KERAS_BACKEND"] = name
    if name == "jax":  # workers share a GPU: no process takes most of its memory up front
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


def current() -> str:
    import keras

    return keras.backend.backend()


def selected() -> str:
    """The backend Keras runs on in this process, or will once imported, read without
    importing it: KERAS_BACKEND, else TensorFlow."""
    return os.environ.get("KERAS_BACKEND", DEFAULT)


def start(name: str, threads: int | None = None, quiet: bool = True) -> None:
    """A process's first step: the backend selected, TensorFlow's start-up notes kept off
    the terminal (`quiet`), and (in a worker) its share of the CPU's threads."""
    select(name)
    if name == "tensorflow":
        from pipeline import quiet as quietly

        if quiet:
            quietly.import_tensorflow()
        if threads:
            import tensorflow as tf

            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
    else:
        _keep_tensorflow_out()
    if name == "torch" and threads:
        import torch

        torch.set_num_threads(threads)
    elif name == "jax" and threads:  # read when JAX starts, which is later
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = f"{flags} --xla_cpu_multi_thread_eigen=false".strip()


def quiet_tensorflow() -> None:
    """Before Keras is imported on TensorFlow's backend: TensorFlow imported first, without
    its C++ start-up notes on the user's terminal. Nothing on JAX or PyTorch."""
    if selected() == "tensorflow":
        from pipeline import quiet

        quiet.import_tensorflow()


def import_tensorflow() -> None:
    """TensorFlow, quietly, for what needs it on every backend (`TextVectorization`, text
    encoders). In a JAX or PyTorch process it stays off the GPU, and Keras, told there was
    no TensorFlow (`_keep_tensorflow_out`), is told there is one now."""
    from pipeline import quiet

    fresh = "tensorflow" not in sys.modules
    quiet.import_tensorflow()
    if selected() == "tensorflow":
        return
    import tensorflow as tf

    if fresh and shutil.which("nvidia-smi"):  # an NVIDIA GPU may be there
        with contextlib.suppress(RuntimeError):  # already initialised: too late, harmless
            tf.config.set_visible_devices([], "GPU")
    if "keras" in sys.modules:
        # private: Keras keeps its answer, with no public way to ask again (test_library_internals)
        from keras.src.utils import module_utils

        module_utils.tensorflow._available = None  # asked again: it is there now


def _keep_tensorflow_out() -> None:
    """Keras asks whether TensorFlow is installed, importing it to find out, when it saves a
    model on any backend (`serialization_lib`: `tf.available`). A JAX or PyTorch process
    that has not imported TensorFlow holds no TensorFlow object, so the answer is no."""
    if "tensorflow" in sys.modules:
        return
    # private: Keras has no public way to tell it (tests/test_library_internals.py)
    from keras.src.utils import module_utils

    module_utils.tensorflow._available = False


def set_seed(seed: int) -> None:
    """Python's, NumPy's and Keras' seeds, and the backend's own. Written here because
    `keras.utils.set_random_seed` imports TensorFlow whenever it is installed, which a JAX
    or PyTorch trial must not pay for (about 1 s and 500 MB a process)."""
    import keras

    name = keras.backend.backend()
    if name == "tensorflow":
        keras.utils.set_random_seed(seed)
        return
    # private: set_random_seed's own steps, less TensorFlow (tests/test_library_internals.py)
    from keras.src.backend.common import global_state  # what set_random_seed resets
    from keras.src.random import seed_generator

    global_state.set_global_attribute("global_random_seed", seed)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)
    random.seed(seed)
    np.random.seed(seed)
    if name == "torch":
        import torch

        torch.manual_seed(seed)


def devices() -> str:
    """Where this process trains: "GPU xN" (TensorFlow: with memory growth on), or "CPU"."""
    name = current()
    if name == "tensorflow":
        import tensorflow as tf

        from pipeline import quiet

        with quiet.native_stderr_silenced():  # no GPU: a cuInit error, no news to the user
            gpus = tf.config.list_physical_devices("GPU")
        for gpu in gpus:
            # RuntimeError: already initialised, so growth was set earlier in this process
            with contextlib.suppress(RuntimeError):
                tf.config.experimental.set_memory_growth(gpu, True)
        return f"GPU x{len(gpus)}" if gpus else "CPU"
    if name == "jax":
        import jax

        gpus = [d for d in jax.devices() if d.platform == "gpu"]
        return f"GPU x{len(gpus)}" if gpus else "CPU"
    import torch

    n = torch.cuda.device_count()
    return f"GPU x{n}" if n else "CPU"


def several_steps_per_call() -> bool:
    """Can `fit` run several batches in one call (`steps_per_execution`)? TensorFlow and
    JAX: yes; Keras on PyTorch runs one step a call."""
    return current() != "torch"


# --- sparse rows (bags of words: scipy CSR matrices) -------------------------------------


def takes_sparse_input() -> bool:
    """Can a Keras Input be sparse? TensorFlow and JAX: yes; PyTorch: rows go dense."""
    return current() != "torch"


def sparse_tensors() -> bool:
    """Are sparse rows TensorFlow SparseTensors, which TensorFlow's own sparse ops multiply
    and `TextVectorization(sparse=True)` returns? TensorFlow only: on JAX they are BCOO
    matrices (`sparse_input`), on PyTorch dense arrays."""
    return current() == "tensorflow"


def jits_sparse_layers() -> bool:
    """May a layer that takes sparse rows be compiled by XLA? Not on TensorFlow: XLA has no
    kernel for its sparse ops (with a GPU visible, Keras' jit_compile="auto" turns XLA on
    for every layer that supports it, and fit fails at the first step: "Detected at node
    .../SparseTensorDenseMatMul"). JAX multiplies its BCOO rows under jit; PyTorch gets
    dense rows."""
    return current() != "tensorflow"


_KEPT: dict[tuple, Any] = {}  # (id of a CSR matrix, backend) -> its input, while it lives


def sparse_input(x, keep: bool = False) -> Any:
    """A CSR matrix as the backend's model input: a tf.SparseTensor, a JAX BCOO matrix, or
    (PyTorch) a dense float32 array. `keep`: keep it while the matrix lives, for the splits
    every trial or epoch reads (IMDB: 0.14 s to convert the training split, 18 ms the
    validation split; they hold 38 and 25 MB); else converted each time."""
    if not keep:
        return _converted(x)
    key = (id(x), current())
    if key not in _KEPT:
        _KEPT[key] = _converted(x)
        weakref.finalize(x, _KEPT.pop, key, None)
    return _KEPT[key]


def _converted(x) -> Any:
    name = current()
    if name == "torch":
        return x.toarray().astype("float32", copy=False)
    if not x.has_sorted_indices:
        x = x.sorted_indices()
    rows = np.repeat(np.arange(x.shape[0], dtype="int64"), np.diff(x.indptr))
    indices = np.stack([rows, x.indices.astype("int64")], axis=1)
    values = x.data.astype("float32")
    if name == "tensorflow":
        import tensorflow as tf

        return tf.SparseTensor(indices, values, x.shape)
    return _bcoo(indices.astype("int32"), values, x.shape)


def _bcoo(indices: np.ndarray, values: np.ndarray, shape) -> Any:
    """A JAX BCOO matrix whose number of stored values is padded to a power of two (zeros at
    (0, 0)), so that a jitted step sees a few shapes, not one per batch."""
    from jax.experimental import sparse

    stored = max(1, 2 ** math.ceil(math.log2(max(1, len(values)))))
    pad = stored - len(values)
    if pad:
        indices = np.concatenate([indices, np.zeros((pad, 2), dtype=indices.dtype)])
        values = np.concatenate([values, np.zeros(pad, dtype=values.dtype)])
    return sparse.BCOO((values, indices), shape=tuple(shape), indices_sorted=False)


def batches(x, y: np.ndarray, batch_size: int) -> dict[str, Any]:
    """`fit`'s inputs, shuffled each epoch with the seeded NumPy/TensorFlow generators.
    Dense rows (tables, token ids) go to Keras' own array adapter. Sparse rows go, on
    TensorFlow, as one SparseTensor through tf.data, which shuffles and batches them in C++
    (Keras' adapter for scipy matrices converts every batch in Python: an IMDB seed-recipe
    fit took 4.3 s against 3.1 s); on JAX and PyTorch, batch by batch (`SparseRows`)."""
    if isinstance(x, np.ndarray):
        return {"x": x, "y": y, "batch_size": batch_size}
    if current() == "tensorflow":
        import tensorflow as tf

        rows = tf.data.Dataset.from_tensor_slices((sparse_input(x, keep=True), y))
        shuffled = rows.shuffle(x.shape[0], reshuffle_each_iteration=True)
        return {"x": shuffled.batch(batch_size).prefetch(tf.data.AUTOTUNE), "shuffle": False}
    return {"x": sparse_rows(x, y, batch_size), "shuffle": False}


def sparse_rows(x, y: np.ndarray, batch_size: int):
    """A keras.utils.PyDataset of CSR rows in a new order each epoch, as `sparse_input`
    makes them (BCOO on JAX, dense batches on PyTorch)."""
    import keras

    class SparseRows(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__()
            self.order = np.random.permutation(x.shape[0])

        def __len__(self) -> int:
            return math.ceil(x.shape[0] / batch_size)

        def __getitem__(self, index: int):
            rows = np.sort(self.order[index * batch_size : (index + 1) * batch_size])
            return sparse_input(x[rows]), y[rows]

        def on_epoch_end(self) -> None:
            self.order = np.random.permutation(x.shape[0])

    return SparseRows()
