from __future__ import annotations

import numpy as np
import pytest
import torch

from ml.cam_stats import MapAverager, map_grid_png, road_scores
from ml.models import create_model


def test_map_averager_means_per_key():
    rng = np.random.default_rng(0)
    maps = rng.integers(0, 256, size=(6, 48, 48), dtype=np.uint8)
    averager = MapAverager()
    for i, cam in enumerate(maps):
        averager.add(i % 2, cam if i < 3 else cam.tobytes())
    for key in (0, 1):
        np.testing.assert_allclose(averager.mean(key), maps[key::2].astype(float).mean(0) / 255, atol=1e-6)
        assert averager.count(key) == 3
    assert averager.mean("none") is None and averager.count("none") == 0
    assert sorted(averager.keys()) == [0, 1]


def test_map_grid_png_draws_empty_panels_too():
    png = map_grid_png([("a", np.zeros((48, 48))), ("b", None)], title="t")
    assert png.startswith(b"\x89PNG")


def test_road_scores_one_per_face():
    torch.manual_seed(0)
    model = create_model("fer_vgg", widths=(8, 16, 16, 32), depths=(1, 1, 1, 1))
    faces = np.random.default_rng(1).integers(0, 256, size=(3, 48, 48), dtype=np.uint8)
    maps = np.random.default_rng(2).random((3, 48, 48)).astype(np.float32)
    scores = road_scores(model, faces, maps, [0, 1, 2], percentiles=(50,))
    assert scores.shape == (3,) and np.isfinite(scores).all() and (np.abs(scores) <= 1).all()
    with pytest.raises(ValueError, match="differ in length"):
        road_scores(model, faces, maps[:2], [0, 1, 2])
