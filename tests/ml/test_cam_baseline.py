"""ROAD against the random-map baseline: seeded scores and the per-face comparison."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ml.cam_stats import compare_to_baseline, road_scores
from ml.explain import random_maps
from ml.models import create_model
from tests.helpers import TINY_ARCH


def test_compare_to_baseline_counts_wins_per_class():
    scores = np.array([0.3, 0.1, -0.2, 0.5, 0.0])
    baseline = np.array([0.1, 0.2, -0.3, 0.5, -0.1])
    summary = compare_to_baseline(scores, baseline, [0, 0, 1, 1, 2])
    assert summary.mean == pytest.approx(0.14) and summary.baseline_mean == pytest.approx(0.08)
    assert summary.beats == pytest.approx(3 / 5)  # the tie (0.5 vs 0.5) does not count
    assert summary.beats_per_class == {0: (1, 2), 1: (1, 2), 2: (1, 1)}
    with pytest.raises(ValueError, match="need as many"):
        compare_to_baseline(scores, baseline[:4], [0, 0, 1, 1, 2])
    with pytest.raises(ValueError, match="at least one"):
        compare_to_baseline(np.zeros(0), np.zeros(0), [])


def test_road_scores_are_reproducible_with_a_seed_and_leave_the_random_stream_alone():
    torch.manual_seed(0)
    model = create_model("fer_vgg", **TINY_ARCH).eval()
    faces = np.random.default_rng(1).integers(0, 256, size=(3, 48, 48), dtype=np.uint8)
    maps = random_maps(3, seed=2)
    torch.manual_seed(5)
    a = road_scores(model, faces, maps, [0, 1, 2], percentiles=(50,), seed=7)
    after = torch.rand(1)
    torch.manual_seed(5)
    b = road_scores(model, faces, maps, [0, 1, 2], percentiles=(50,), seed=7)
    assert np.array_equal(a, b) and torch.equal(torch.rand(1), after)
    c = road_scores(model, faces, maps, [0, 1, 2], percentiles=(50,), seed=8)
    assert not np.array_equal(a, c)  # the imputation noise is what the seed fixes
