from __future__ import annotations

import numpy as np
import pytest

from ml import neardup
from tests.faces.neardup_data import brightened, cropped, rescaled, shifted, smooth_face


def _pixels_as_features(images: np.ndarray) -> np.ndarray:
    """A stand-in embedding for the pure tests: 12x12 block means, which a shift or a crop barely moves."""
    return images.reshape(len(images), 12, 4, 12, 4).mean(axis=(2, 4)).reshape(len(images), -1) - 100.0


def test_brightness_and_rescale_keep_the_hash_and_distinct_faces_do_not():
    base = smooth_face(1)
    bits = neardup.perceptual_hashes(np.stack([base, brightened(base, 35), brightened(base, -25), rescaled(base),
                                               smooth_face(2), smooth_face(3)]))
    assert bits.shape == (6, 64) and bits.dtype == bool
    distance = (bits[0] != bits).sum(axis=1)
    assert distance[1:4].max() <= neardup.Thresholds().hash_alone
    assert distance[4:].min() > neardup.Thresholds().hash_with_cosine


def test_pairs_carry_their_evidence_and_join_into_groups():
    a, b, c = smooth_face(10), smooth_face(11), smooth_face(12)
    images = np.stack([a, b, brightened(a), c, rescaled(b), shifted(a, 1, -1), cropped(c), smooth_face(13)])
    pairs, groups = neardup.find_near_duplicates(images, _pixels_as_features(images),
                                                 neardup.Thresholds(hash_alone=6, cosine=0.99, hash_with_cosine=24))
    assert groups == [[0, 2, 5], [1, 4], [3, 6]]
    for pair in pairs:
        assert pair.a < pair.b
        assert 0 <= pair.hash_distance <= 24 and -1 <= pair.cosine <= 1.0 + 1e-6
    assert {(p.a, p.b) for p in pairs} >= {(0, 2), (1, 4), (3, 6)}


def test_the_cosine_rule_needs_its_hash_support():
    """Identical features but unrelated pixels: no pair, since the hashes are far apart."""
    images = np.stack([smooth_face(20), smooth_face(21)])
    features = np.ones((2, 8), dtype=np.float32)
    assert neardup.near_duplicate_pairs(neardup.perceptual_hashes(images), features) == []
    # Features that differ, hashes that match: the hash alone makes the pair.
    same = np.stack([images[0], images[0]])
    pairs = neardup.near_duplicate_pairs(neardup.perceptual_hashes(same), np.eye(2, dtype=np.float32))
    assert [(p.a, p.b, p.hash_distance) for p in pairs] == [(0, 1, 0)]
    assert pairs[0].cosine == pytest.approx(0.0)


def test_radius_queries_find_every_pair_inside_the_threshold():
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2, size=(60, 64)).astype(bool)
    bits[7] = bits[3]
    bits[9] = bits[3]
    bits[9, :4] ^= True
    a, b = neardup.hash_candidates(bits, max_distance=4)
    brute = {(i, j) for i in range(60) for j in range(i + 1, 60) if (bits[i] != bits[j]).sum() <= 4}
    assert set(zip(a.tolist(), b.tolist(), strict=True)) == brute >= {(3, 7), (3, 9), (7, 9)}
    unit = neardup.unit_rows(rng.normal(size=(40, 5)))
    a, b = neardup.feature_candidates(unit, min_cosine=0.8)
    cos = unit @ unit.T
    assert set(zip(a.tolist(), b.tolist(), strict=True)) == {(i, j) for i in range(40) for j in range(i + 1, 40)
                                                             if cos[i, j] >= 0.8}


def test_groups_are_connected_components_and_thresholds_are_checked():
    pairs = [neardup.Pair(0, 3, 1, 1.0), neardup.Pair(3, 5, 2, 1.0), neardup.Pair(1, 2, 0, 1.0)]
    assert neardup.groups_from_pairs(7, pairs) == [[0, 3, 5], [1, 2]]
    assert neardup.groups_from_pairs(3, []) == []
    with pytest.raises(ValueError):
        neardup.Thresholds(hash_alone=10, hash_with_cosine=5)
    with pytest.raises(ValueError):
        neardup.Thresholds(cosine=1.5)
    with pytest.raises(ValueError):
        neardup.near_duplicate_pairs(np.zeros((2, 64), bool), np.zeros((3, 4)))
