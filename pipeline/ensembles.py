"""Greedy ensemble selection with replacement (Caruana, Niculescu-Mizil, Crew and Ksikes,
"Ensemble selection from libraries of models", ICML 2004), on the validation predictions
that a study's trials kept, and an honest judgement of what it chose.

Pure NumPy, by hand: scikit-learn's VotingClassifier and StackingClassifier fit their
members themselves and weigh them by hand or by a second model, and AutoGluon's and
auto-sklearn's ensemble selection are internals of their own AutoML systems, not a
function to call on predictions that already exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

EPSILON = 1e-7  # probabilities clipped away from 0 and 1 in the log loss
HALVES_SEED = 0  # the rows' split into the two halves of a judgement


@dataclass(frozen=True)
class Judgement:
    """What selection chose on every validation row, and how the two ways of choosing fare
    on rows that did not choose: each half of the rows scored by what was chosen on the
    other half, the ensemble's weights or the best single candidate."""

    counts: np.ndarray  # picks per candidate, chosen on every validation row
    value: float  # the task metric of that ensemble on every validation row (in sample)
    held_out: float  # the ensemble's, cross-fitted
    single_held_out: float  # the best single candidate's, cross-fitted
    minimize: bool

    @property
    def better(self) -> bool:
        """The ensemble beats the best single candidate on rows that did not choose either,
        and has more than one member."""
        if np.count_nonzero(self.counts) < 2:
            return False
        if self.minimize:
            return self.held_out < self.single_held_out
        return self.held_out > self.single_held_out


def select(predictions: Sequence[np.ndarray], y: np.ndarray, task: str, size: int) -> np.ndarray:
    """How many times each of `predictions` (one array per candidate, rows alike) is
    picked in up to `size` greedy rounds: each round adds the candidate whose addition
    gives the average with the lowest loss (`loss`), the first of equals; a candidate may
    be picked again (selection with replacement). The picks kept are those of the round
    with the lowest loss, as Caruana et al. keep the best-performing ensemble they pass
    through, so the choice is never worse, on these rows, than the best single candidate
    (the first pick). Weights are the counts."""
    counts = np.zeros(len(predictions), dtype=int)
    total = np.zeros_like(np.asarray(predictions[0], dtype=np.float64))
    best_loss, best_counts = np.inf, counts.copy()
    for picked in range(size):
        losses = [loss((total + p) / (picked + 1), y, task) for p in predictions]
        choice = int(np.argmin(losses))
        counts[choice] += 1
        total += predictions[choice]
        if losses[choice] < best_loss:
            best_loss, best_counts = losses[choice], counts.copy()
    return best_counts


def combine(predictions: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """The weighted average of `predictions`: probabilities for classification, values for
    regression."""
    weights = np.asarray(weights, dtype=np.float64)
    pairs = zip(weights, predictions, strict=True)
    total = sum(w * np.asarray(p, dtype=np.float64) for w, p in pairs if w)
    return total / weights.sum()


def judge(predictions: Sequence[np.ndarray], y: np.ndarray, task: str, size: int) -> Judgement:
    """Select on every row (the weights to use), and judge by 2-fold cross-fitting: on
    each half of the rows, the ensemble chosen on the other half against the single
    candidate best (by the task's metric) on the other half. Comparing the search's best
    trial on rows that chose it would favour it: it is the best of many on those rows."""
    halves = np.array_split(np.random.default_rng(HALVES_SEED).permutation(len(y)), 2)
    ensemble = np.zeros_like(np.asarray(predictions[0], dtype=np.float64))
    single = np.zeros_like(ensemble)
    sign = 1 if task == "regression" else -1
    for judged, chosen_on in ((halves[0], halves[1]), (halves[1], halves[0])):
        counts = select([p[chosen_on] for p in predictions], y[chosen_on], task, size)
        ensemble[judged] = combine([p[judged] for p in predictions], counts)
        scores = [sign * metric(p[chosen_on], y[chosen_on], task) for p in predictions]
        single[judged] = predictions[int(np.argmin(scores))][judged]
    counts = select(predictions, y, task, size)
    return Judgement(
        counts=counts,
        value=metric(combine(predictions, counts), y, task),
        held_out=metric(ensemble, y, task),
        single_held_out=metric(single, y, task),
        minimize=task == "regression",
    )


def loss(pred: np.ndarray, y: np.ndarray, task: str) -> float:
    """What selection minimizes: the log loss of the averaged probabilities
    (classification: smooth, where accuracy ties), the mean absolute error (regression)."""
    if task == "regression":
        return float(np.mean(np.abs(pred.reshape(len(y), -1)[:, 0] - y)))
    if task == "binary":
        p = np.clip(pred.reshape(len(y), -1)[:, 0], EPSILON, 1 - EPSILON)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    p = np.clip(pred[np.arange(len(y)), y.astype(int)], EPSILON, 1.0)
    return float(-np.mean(np.log(p)))


def metric(pred: np.ndarray, y: np.ndarray, task: str) -> float:
    """The task's metric (`metrics.task_metric`): accuracy, or the mean absolute error."""
    if task == "regression":
        return float(np.mean(np.abs(pred.reshape(len(y), -1)[:, 0] - y)))
    return float(np.mean(labels(pred, task) == y))


def labels(pred: np.ndarray, task: str) -> np.ndarray:
    """Class indices: above one half (binary), the most probable class (multiclass)."""
    if task == "binary":
        return (pred.reshape(len(pred), -1)[:, 0] > 0.5).astype(int)
    return pred.argmax(axis=1)
