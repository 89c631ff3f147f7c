from __future__ import annotations

import numpy as np
import pytest

from ml.noise import class_conditional_noise, noise_matrix_from_confusion, uniform_noise

LABELS = np.repeat(np.arange(7), [400, 60, 400, 700, 480, 320, 500])  # FER-like imbalance, 2,860 rows

# Only three pairs confused, unevenly: fear->sad twice as often as fear->surprise, angry->disgust, and neutral->sad.
CONFUSION = np.diag([50, 50, 50, 50, 50, 50, 50])
CONFUSION[2, 4], CONFUSION[2, 5], CONFUSION[0, 1], CONFUSION[6, 4] = 20, 10, 6, 12


def test_uniform_noise_flips_the_asked_share_to_other_classes():
    noise = uniform_noise(LABELS, 0.1, seed=3)
    assert noise.flipped.sum() == round(0.1 * len(LABELS))
    assert (noise.labels[noise.flipped] != LABELS[noise.flipped]).all()
    assert (noise.labels[~noise.flipped] == LABELS[~noise.flipped]).all()
    assert len({(a, b) for a, b in zip(LABELS[noise.flipped], noise.labels[noise.flipped], strict=True)}) > 30


def test_class_conditional_noise_achieves_the_rate_and_flips_only_confused_pairs():
    noise = class_conditional_noise(LABELS, 0.1, CONFUSION, seed=0)
    assert noise.flipped.sum() == round(0.1 * len(LABELS))
    assert (noise.labels != LABELS).sum() == noise.flipped.sum()
    pairs = {(int(a), int(b)) for a, b in zip(LABELS[noise.flipped], noise.labels[noise.flipped], strict=True)}
    assert pairs == {(2, 4), (2, 5), (0, 1), (6, 4)}


def test_class_conditional_noise_follows_the_confusion_proportions():
    noise = class_conditional_noise(LABELS, 0.1, CONFUSION, seed=0)
    flips = np.zeros((7, 7), dtype=int)
    np.add.at(flips, (LABELS[noise.flipped], noise.labels[noise.flipped]), 1)
    # Within fear, sad twice surprise; across classes, per-row flip rates follow the row-normalised confusions.
    assert abs(flips[2, 4] - 2 * flips[2, 5]) <= 1
    rate = flips.sum(1) / np.bincount(LABELS)
    expected = (CONFUSION.sum(1) - 50) / CONFUSION.sum(1)
    np.testing.assert_allclose(rate / rate[2], expected / expected[2], atol=0.01)


def test_noise_matrix_columns_are_distributions_with_the_asked_rate():
    prior = np.bincount(LABELS) / len(LABELS)
    matrix = noise_matrix_from_confusion(CONFUSION, 0.1, prior)
    np.testing.assert_allclose(matrix.sum(0), 1.0)
    assert abs(float(prior @ (1 - np.diag(matrix))) - 0.1) < 1e-9
    assert matrix[4, 2] > 0 and matrix[2, 4] == 0  # fear->sad, never sad->fear (columns are the true class)


@pytest.mark.parametrize("make", [lambda s: uniform_noise(LABELS, 0.1, seed=s),
                                  lambda s: class_conditional_noise(LABELS, 0.1, CONFUSION, seed=s)])
def test_same_seed_same_noise_other_seed_other_noise(make):
    a, b, c = make(7), make(7), make(8)
    assert (a.labels == b.labels).all() and (a.flipped == b.flipped).all()
    assert (a.flipped != c.flipped).any()


def test_a_rate_the_confusions_cannot_carry_is_refused():
    with pytest.raises(ValueError, match="rate"):
        class_conditional_noise(LABELS, 1.5, CONFUSION)
    with pytest.raises(ValueError, match="more than every row"):
        class_conditional_noise(LABELS, 0.9, CONFUSION)
