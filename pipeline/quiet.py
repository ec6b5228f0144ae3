"""Import TensorFlow without the C++ start-up notes it writes to stderr."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


def import_tensorflow() -> None:
    """TensorFlow writes its notes to file descriptor 2 before its log level applies."""
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with native_stderr_silenced():
        import tensorflow  # noqa: F401


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """File descriptor 2 sent to /dev/null for the block: what C++ code writes there (its
    start-up notes, a failed cuInit on a machine without a GPU) is not shown."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
