"""Named CAM layers (``last`` and ``fine``) resolved from each model's structure, and the methods that may use them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ml.explain import LAYER_METHODS, explain, layer_check, random_maps
from ml.models import CAM_LAYERS, available_models, cam_layer, cam_layers, create_model
from tests.helpers import TINY_ARCH

from .conftest import synthetic_faces


@pytest.mark.parametrize("arch", available_models())
def test_every_architecture_resolves_both_layers_without_changing_its_output(arch):
    torch.manual_seed(0)
    model = create_model(arch).eval()
    x = torch.randn(2, model.preprocessing.channels, model.preprocessing.input_size, model.preprocessing.input_size)
    with torch.no_grad():
        before = model(x)
    layers = cam_layers(model)
    assert set(layers) == set(CAM_LAYERS)
    assert layers["last"].module is model.cam_target_layer  # the default stays what every caller had
    assert layers["fine"].size == 2 * layers["last"].size
    assert layers["fine"].module is not layers["last"].module
    assert dict(model.named_modules())[layers["fine"].path] is layers["fine"].module
    assert all(not m._forward_hooks for m in model.modules())  # the probe left no hook behind
    with torch.no_grad():
        assert torch.equal(model(x), before) and model(x).shape == (2, 7)


def test_fer_vgg_layers_are_its_6x6_and_12x12_stages():
    model = create_model("fer_vgg", **TINY_ARCH)
    assert (cam_layer(model, "last").path, cam_layer(model, "last").size) == ("features.3", 6)
    assert (cam_layer(model, "fine").path, cam_layer(model, "fine").size) == ("features.2", 12)
    with pytest.raises(ValueError, match="unknown CAM layer 'middle'"):
        cam_layer(model, "middle")


def test_only_the_methods_that_suit_it_take_the_fine_layer():
    assert LAYER_METHODS["fine"] == {"hirescam", "layercam"}
    layer_check("layercam", "fine")
    layer_check("gradcam", "last")
    with pytest.raises(ValueError, match="does not suit the 'fine' layer"):
        layer_check("gradcam", "fine")
    with pytest.raises(ValueError, match="unknown CAM layer"):
        layer_check("gradcam", "nope")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model("fer_vgg", **TINY_ARCH).eval()


@pytest.mark.parametrize("method", ["hirescam", "layercam"])
def test_fine_maps_are_real_and_differ_from_the_last_layer(model, method):
    faces, _ = synthetic_faces(3)
    fine = explain(model, faces, method=method, layer="fine", overlay_size=48)
    last = explain(model, faces, method=method, layer="last", overlay_size=48)
    assert fine.maps.shape == (3, 48, 48) and fine.maps.dtype == np.float32
    assert (fine.maps.max(axis=(1, 2)) > 0.99).all() and (fine.maps.std(axis=(1, 2)) > 0.05).all()
    assert fine.targets == last.targets
    assert np.abs(fine.maps - last.maps).max() > 0.1
    # A 12x12 map upsampled to 48 changes more from pixel to pixel than a 6x6 one: more detail, not just a copy.
    assert np.abs(np.diff(fine.maps, axis=2)).mean() > np.abs(np.diff(last.maps, axis=2)).mean()
    assert all(not m._forward_hooks and not m._backward_hooks for m in model.modules())


def test_explain_refuses_a_method_on_a_layer_it_does_not_suit(model):
    faces, _ = synthetic_faces(1)
    with pytest.raises(ValueError, match="does not suit"):
        explain(model, faces, method="gradcam", layer="fine")


def test_random_maps_are_seeded_uniform_maps():
    a = random_maps(4, seed=3)
    assert a.shape == (4, 48, 48) and a.dtype == np.float32 and 0 <= a.min() and a.max() < 1
    assert np.array_equal(a, random_maps(4, seed=3)) and not np.array_equal(a, random_maps(4, seed=4))
    assert abs(float(a.mean()) - 0.5) < 0.05
