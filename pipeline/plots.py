"""Matplotlib figures saved as PNG: learning curves, confusion matrix, best so far (Optuna's
study plots are drawn by the engine, `pipeline/engine/records.py`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def learning_curves(history: dict[str, list[float]], metric: str, path: Path) -> Path:
    """Training vs validation loss and metric per epoch, drawn as the seed notebooks do."""
    epochs = np.arange(1, len(history["loss"]) + 1)
    fig = _figure(figsize=(10, 4))
    # fixed margins: a "tight" bounding box draws the figure twice (0.15 against 0.10 s of
    # CPU a trial, taken from the next trial's training on a small machine)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.13, top=0.91, wspace=0.22)
    axes = fig.subplots(1, 2)
    for ax, key in zip(axes, ("loss", metric), strict=True):
        ax.plot(epochs, history[key], "bo", label=f"Training {key}")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], "b", label=f"Validation {key}")
        ax.set(xlabel="Epochs", ylabel=key, title=f"Training and validation {key}")
        ax.legend()
    return save(fig, path, tight=False)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, labels: tuple, path: Path) -> Path:
    from sklearn.metrics import ConfusionMatrixDisplay

    many = len(labels) > 10
    fig = _figure(figsize=(12, 12) if many else (5, 5))
    ax = fig.add_subplot()
    ConfusionMatrixDisplay.from_predictions(
        y_true,
        y_pred,
        labels=list(range(len(labels))),
        display_labels=list(labels),
        ax=ax,
        include_values=not many,
        xticks_rotation="vertical",
        colorbar=False,
    )
    return save(fig, path)


def _figure(**options):
    """Matplotlib's object API (no pyplot state, no GUI backend), imported when a picture
    is drawn: a command that draws none does not pay its second."""
    from matplotlib.figure import Figure

    return Figure(**options)


def save(fig, path: Path, tight: bool = True) -> Path:
    """`fig` as a PNG at `path` (80 dpi)."""
    fig.savefig(path, dpi=80, bbox_inches="tight" if tight else None)
    return path


def best_so_far(
    curves: dict[str, tuple[list[float], list[float]]],
    metric: str,
    path: Path,
    references: dict[str, float] | None = None,
    xlabel: str = "trials finished",
) -> Path:
    """Best value so far against trials (or seconds), one line per search, with dashed
    reference lines (the recipe, the best row of a seed table)."""
    fig = _figure(figsize=(7, 4))
    ax = fig.add_subplot()
    for label, (x, y) in curves.items():
        ax.step(x, y, where="post", label=label)
    for label, value in (references or {}).items():
        ax.axhline(value, linestyle="--", linewidth=1, color="gray")
        ax.annotate(label, (ax.get_xlim()[0], value), fontsize=8, va="bottom")
    ax.set(xlabel=xlabel, ylabel=f"best {metric} so far", title=f"Best {metric} so far")
    ax.legend()
    return save(fig, path)
