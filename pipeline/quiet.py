"""Import TensorFlow without the C++ start-up notes it writes to stderr."""

from __future__ import annotations

import os
import sys


def import_tensorflow() -> None:
    """TensorFlow writes its notes to file descriptor 2 before its log level applies."""
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
