from __future__ import annotations

import numpy as np
import pytest

from ml.explain import METHODS, explain, map_to_uint8
from ml.models import create_model

from .conftest import TINY_ARCH, synthetic_faces


@pytest.fixture(scope="module")
def model():
    return create_model("fer_vgg", **TINY_ARCH).eval()


@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "hirescam", "scorecam", "eigencam", "layercam"])
def test_maps_have_the_right_shape(model, method):
    faces, _ = synthetic_faces(3)
    result = explain(model, faces, method=method, overlay_size=96)
    assert result.maps.shape == (3, 48, 48)
    assert result.overlays.shape == (3, 96, 96, 3) and result.overlays.dtype == np.uint8
    assert result.maps.min() >= 0 and result.maps.max() <= 1
    assert result.targets == result.probabilities.argmax(1).tolist()
    assert map_to_uint8(result.maps).dtype == np.uint8


def test_maps_differ_between_target_classes(model):
    faces, _ = synthetic_faces(1)
    a = explain(model, faces, targets=[0]).maps
    b = explain(model, faces, targets=[5]).maps
    assert not np.allclose(a, b)


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
