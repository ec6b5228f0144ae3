"""Greedy ensemble selection on hand-made predictions: known weights, and a judgement that
never uses the rows that chose the weights."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline import ensembles


def test_a_perfect_candidate_takes_every_pick():
    y = np.array([0, 1, 1, 0, 1])
    perfect = y.reshape(-1, 1).astype(float)
    noisy = np.full((5, 1), 0.5)
    counts = ensembles.select([noisy, perfect, noisy], y, "binary", size=7)
    assert counts.tolist() == [0, 1, 0]  # more picks of it change nothing: the first is kept


def test_two_complementary_regressors_are_picked_equally():
    """Each is off by +1 or -1 on alternate rows; their average is exact, after two picks:
    the picks after that reach the same loss at best, so the first two are kept."""
    y = np.zeros(6)
    up = np.array([1, -1, 1, -1, 1, -1], dtype=float).reshape(-1, 1)
    down = -up
    worse = np.full((6, 1), 3.0)
    counts = ensembles.select([up, worse, down], y, "regression", size=4)
    assert counts.tolist() == [1, 0, 1]


def test_known_weights_for_three_classes():
    """Candidate a is right on classes 0 and 1 and unsure on 2; b the other way round: the
    log loss is lowest with both, and a third candidate that is always wrong is never
    picked."""
    y = np.array([0, 1, 2, 2])
    a = np.array([[0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.4, 0.3, 0.3], [0.4, 0.3, 0.3]])
    b = np.array([[0.4, 0.3, 0.3], [0.3, 0.4, 0.3], [0.05, 0.05, 0.9], [0.05, 0.05, 0.9]])
    wrong = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    counts = ensembles.select([a, b, wrong], y, "multiclass", size=10)
    assert counts[2] == 0
    assert counts[0] >= 1 and counts[1] >= 1 and abs(counts[0] - counts[1]) <= 1
    blended = ensembles.combine([a, b, wrong], counts)
    assert ensembles.metric(blended, y, "multiclass") == 1.0
    assert ensembles.metric(a, y, "multiclass") == 0.5


def test_combine_is_the_weighted_average():
    p = [np.array([[0.0], [1.0]]), np.array([[1.0], [1.0]])]
    assert ensembles.combine(p, [3, 1]).ravel().tolist() == [0.25, 1.0]


def test_one_prediction_twice_is_no_ensemble():
    rng = np.random.default_rng(0)
    n = 400
    y = rng.integers(0, 2, n)
    best = np.where(rng.random(n) < 0.8, y, 1 - y).reshape(-1, 1).astype(float)
    honest = ensembles.judge([best, best.copy()], y, "binary", size=5)
    assert honest.single_held_out == pytest.approx(ensembles.metric(best, y, "binary"))
    assert not honest.better  # one distinct prediction twice: no gain, one member picked
    assert np.count_nonzero(honest.counts) == 1


def test_an_ensemble_of_independent_errors_beats_its_best_member():
    """Three candidates each right on about 75% of the rows, their errors independent:
    the majority of three is right on about 84%, on rows that did not choose it."""
    rng = np.random.default_rng(1)
    n = 2000
    y = rng.integers(0, 2, n)
    candidates = [
        np.where(rng.random(n) < 0.75, y * 0.8 + 0.1, 0.9 - y * 0.8).reshape(-1, 1)
        for _ in range(3)
    ]
    judged = ensembles.judge(candidates, y, "binary", size=9)
    assert judged.better
    assert judged.held_out > judged.single_held_out + 0.05
    assert np.count_nonzero(judged.counts) == 3


@given(
    st.integers(min_value=1, max_value=6),
    st.integers(min_value=1, max_value=30),
    st.integers(min_value=0, max_value=2**31 - 1),
    st.sampled_from(["binary", "multiclass", "regression"]),
)
def test_selection_is_never_worse_than_the_best_single_candidate(
    n_candidates: int, size: int, seed: int, task: str
):
    rng = np.random.default_rng(seed)
    n, width = 20, 3 if task == "multiclass" else 1
    y = rng.integers(0, width if task == "multiclass" else 2, n).astype(float)
    if task == "regression":
        y = rng.normal(size=n)
    raw = [rng.random((n, width)) for _ in range(n_candidates)]
    preds = [p / p.sum(axis=1, keepdims=True) if task == "multiclass" else p for p in raw]
    counts = ensembles.select(preds, y, task, size)
    assert 1 <= counts.sum() <= size and (counts >= 0).all()
    chosen = ensembles.loss(ensembles.combine(preds, counts), y, task)
    best_single = min(ensembles.loss(p, y, task) for p in preds)
    assert chosen <= best_single + 1e-12


def test_a_lucky_candidate_loses_on_the_rows_that_did_not_choose_it():
    """Candidate `lucky` is right on exactly the rows of the first half and wrong on the
    second: chosen on either half, it fails the other. Held out, neither the single best
    choice nor the ensemble gets credit for that luck."""
    rng = np.random.default_rng(2)
    n = 400
    y = rng.integers(0, 2, n)
    first, _ = np.array_split(np.random.default_rng(ensembles.HALVES_SEED).permutation(n), 2)
    lucky = (1 - y).astype(float)
    lucky[first] = y[first]
    steady = np.where(rng.random(n) < 0.7, y, 1 - y).astype(float)
    judged = ensembles.judge([lucky.reshape(-1, 1), steady.reshape(-1, 1)], y, "binary", 5)
    assert ensembles.metric(lucky.reshape(-1, 1), y, "binary") == pytest.approx(0.5)
    assert judged.single_held_out < 0.5  # chosen on one half, it is wrong on the other
