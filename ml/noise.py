"""Injected label noise for benchmarks: uniform flips, and class-conditional flips shaped like a model's confusions.

Both flip exactly ``round(rate * N)`` labels (the achieved rate is the asked one up to rounding) with a seeded
``numpy.random.Generator``. cleanlab's ``benchmarking.noise_generation.generate_noisy_labels`` does the
class-conditional part too, but draws from the global ``np.random`` state and truncates every cell count (so it
under-shoots the rate), hence this small version; the matrix follows its convention (columns = true class).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ml.labels import NUM_CLASSES


class InjectedNoise(NamedTuple):
    labels: np.ndarray  # the noisy labels, int64 (N,)
    flipped: np.ndarray  # bool (N,): True where the noisy label differs from the true one


def uniform_noise(labels: np.ndarray, rate: float, seed: int = 0, *,
                  num_classes: int = NUM_CLASSES) -> InjectedNoise:
    """Flip ``round(rate * N)`` rows chosen at random, each to one of the other classes, uniformly."""
    true = _check(labels, rate, num_classes)
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(true), size=int(round(rate * len(true))), replace=False)
    noisy = true.copy()
    noisy[rows] = (true[rows] + rng.integers(1, num_classes, size=len(rows))) % num_classes
    return InjectedNoise(noisy, noisy != true)


def noise_matrix_from_confusion(confusion: np.ndarray, rate: float, class_prior: np.ndarray) -> np.ndarray:
    """Column-stochastic P(noisy=i | true=j) whose off-diagonal is proportional to the model's row-normalised
    confusion P(predicted=i | true=j), one scale for all classes (classes the model confuses more flip more), chosen
    so that the flip rate under ``class_prior`` is ``rate``."""
    confusion = np.asarray(confusion, dtype=np.float64)
    prior = np.asarray(class_prior, dtype=np.float64)
    k = len(confusion)
    if confusion.shape != (k, k) or prior.shape != (k,):
        raise ValueError(f"confusion must be (K, K) and the prior (K,), got {confusion.shape} and {prior.shape}")
    totals = confusion.sum(1, keepdims=True)
    off = np.divide(confusion, totals, out=np.zeros_like(confusion), where=totals > 0)  # rows: true class
    np.fill_diagonal(off, 0.0)
    base_rate = float(prior @ off.sum(1))
    if base_rate <= 0:
        raise ValueError("the confusion matrix has no off-diagonal mass for the classes present")
    off *= rate / base_rate
    if off.sum(1).max() > 1:
        raise ValueError(f"rate {rate} would flip more than every row of some class")
    matrix = off.T.copy()  # columns: true class
    matrix[np.diag_indices(k)] = 1.0 - off.sum(1)
    return matrix


def class_conditional_noise(labels: np.ndarray, rate: float, confusion: np.ndarray, seed: int = 0) -> InjectedNoise:
    """Flip ``round(rate * N)`` rows, class j to class i with probability proportional to ``confusion[j][i]`` (rows:
    true class, columns: predicted, as ``ml.evaluate.classification_metrics`` reports it; see
    ``noise_matrix_from_confusion``). Pairs the model never confuses never flip."""
    confusion = np.asarray(confusion, dtype=np.float64)
    true = _check(labels, rate, len(confusion))
    k = len(confusion)
    counts = np.bincount(true, minlength=k)
    matrix = noise_matrix_from_confusion(confusion, rate, counts / len(true))
    expected = matrix * counts[None, :]  # expected[i, j]: rows of true class j that become i
    np.fill_diagonal(expected, 0.0)
    flips = _round_to_total(expected, int(round(rate * len(true))))
    rng = np.random.default_rng(seed)
    noisy = true.copy()
    for j in range(k):
        targets = np.repeat(np.arange(k), flips[:, j])
        if len(targets):
            rows = rng.choice(np.flatnonzero(true == j), size=len(targets), replace=False)
            noisy[rows] = targets
    return InjectedNoise(noisy, noisy != true)


def _round_to_total(expected: np.ndarray, total: int) -> np.ndarray:
    """Integer cell counts summing to ``total``: floor, then one more to the cells with the largest remainders."""
    floor = np.floor(expected).astype(np.int64)
    remainder = (expected - floor).ravel()
    extra = total - int(floor.sum())
    if extra > 0:
        floor.ravel()[np.argsort(-remainder, kind="stable")[:extra]] += 1
    return floor


def _check(labels: np.ndarray, rate: float, num_classes: int) -> np.ndarray:
    true = np.asarray(labels, dtype=np.int64)
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"noise rate must lie in [0, 1), got {rate}")
    if len(true) and (true.min() < 0 or true.max() >= num_classes):
        raise ValueError(f"labels must lie in 0..{num_classes - 1}")
    return true
