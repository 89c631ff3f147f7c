from __future__ import annotations

import numpy as np
import pytest
import torch

from ml.explain import METHODS, explain, map_to_uint8
from ml.models import create_model
from tests.helpers import TINY_ARCH

from .conftest import synthetic_faces


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)  # the assertions on map contents hold for many seeds; a fixed one keeps them repeatable
    return create_model("fer_vgg", **TINY_ARCH).eval()


@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "hirescam", "scorecam", "eigencam", "layercam"])
def test_maps_are_non_trivial_and_depend_on_the_face(model, method):
    faces, _ = synthetic_faces(3)  # three classes: the bright band sits at a different height in each face
    result = explain(model, faces, method=method, overlay_size=96)
    maps = result.maps
    assert maps.shape == (3, 48, 48) and maps.dtype == np.float32
    assert result.overlays.shape == (3, 96, 96, 3) and result.overlays.dtype == np.uint8
    assert maps.min() >= 0 and maps.max() <= 1
    # Every map is a real heatmap: pytorch-grad-cam scales each one to peak at 1, and it is not flat.
    assert (maps.max(axis=(1, 2)) > 0.99).all()
    assert (maps.std(axis=(1, 2)) > 0.05).all()
    # Different faces get different maps, so a map cannot be a constant or a copy of another face's.
    for i, j in ((0, 1), (0, 2), (1, 2)):
        assert np.abs(maps[i] - maps[j]).max() > 0.1, (i, j)
    assert result.targets == result.probabilities.argmax(1).tolist()
    assert map_to_uint8(maps).dtype == np.uint8 and map_to_uint8(maps).max() == 255


# Score-CAM is left out: at random initialization its maps for different classes differ by about 1e-3.
@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "hirescam", "layercam"])
def test_maps_differ_between_target_classes(model, method):
    faces, _ = synthetic_faces(1)
    a = explain(model, faces, method=method, targets=[0]).maps
    b = explain(model, faces, method=method, targets=[5]).maps
    assert np.abs(a - b).max() > 0.1


def test_hooks_are_released_over_many_calls(model):
    faces, _ = synthetic_faces(2)
    layer = model.cam_target_layer
    for _ in range(100):
        explain(model, faces, method="gradcam")
    assert not layer._forward_hooks and not layer._backward_hooks
    assert not getattr(layer, "_forward_pre_hooks", {})
    assert all(not m._forward_hooks for m in model.modules())


def test_bad_method_and_target_count():
    model = create_model("fer_vgg", **TINY_ARCH)
    faces, _ = synthetic_faces(2)
    with pytest.raises(ValueError, match="unknown CAM method"):
        explain(model, faces, method="nope")
    with pytest.raises(ValueError, match="targets"):
        explain(model, faces, targets=[1])
    assert "gradcam" in METHODS


@pytest.mark.parametrize("targets", [[0, 7], [-1, 0], [7, 0]])
def test_out_of_range_target_is_refused_before_any_cam_runs(model, targets):
    """pytorch-grad-cam swallows the IndexError of an out-of-range class inside its ``with`` block: the map was then
    unbound (first batch), left over from the previous batch (later ones), or, for -1, the last class's."""
    faces, _ = synthetic_faces(2)
    bad = next(t for t in targets if not 0 <= t < 7)
    forwards = []
    handle = model.register_forward_hook(lambda *_: forwards.append(1))
    try:
        with pytest.raises(ValueError, match=rf"target {bad} \(face {targets.index(bad)}\) out of range 0\.\.6"):
            explain(model, faces, targets=targets, batch_size=1)
    finally:
        handle.remove()
    assert forwards == []  # refused before the first batch, not after explaining the good faces
