from __future__ import annotations

import pytest
import torch

from ml.models import available_models, count_trainable, create_model

# Worked out by hand from the layer list in the ml/ issue (Keras layers carry biases; BN trains gamma and beta):
# conv 1->32: 320, BN 64; conv 32->64: 18,496, BN 128; conv 64->128: 73,856, BN 256; conv 128->256: 295,168, BN 512;
# dense 36,864->256: 9,437,440, BN 512; dense 256->7: 1,799.
FER_CNN_GREY = 320 + 64 + 18_496 + 128 + 73_856 + 256 + 295_168 + 512 + 9_437_440 + 512 + 1_799
FER_CNN_RGB = FER_CNN_GREY - 320 + (3 * 32 * 9 + 32)
# VGG19 head: 512->256 (131,328) and 256->7 (1,799).
VGG_HEAD = 131_328 + 1_799
VGG_CONV_512 = 512 * 512 * 9 + 512  # 2,359,808


@pytest.mark.parametrize("name", ["fer_cnn", "fer_vgg", "fer_vgg_m"])
def test_output_shape(name):
    model = create_model(name).eval()
    assert model(torch.randn(2, 1, 48, 48)).shape == (2, 7)
    assert model.forward_features(torch.randn(2, 1, 48, 48)).ndim == 4


@pytest.mark.parametrize("name", available_models())
def test_forward_is_head_of_features(name):
    """Grad-CAM and evaluation rely on ``model(x) == forward_head(forward_features(x))``, and on the head reading
    each face's own features (no batch mixing in eval mode)."""
    torch.manual_seed(0)
    model = create_model(name).eval()
    pre = model.preprocessing
    x = torch.randn(2, pre.channels, pre.input_size, pre.input_size)
    with torch.no_grad():
        feats = model.forward_features(x)
        out = model.forward_head(feats)
        assert out.shape == (2, 7)
        assert torch.allclose(model(x), out, rtol=1e-5, atol=1e-6)
        changed = feats.clone()
        changed[0] += torch.randn_like(changed[0])
        out_changed = model.forward_head(changed)
    assert not torch.allclose(out_changed[0], out[0], atol=1e-4)
    assert torch.allclose(out_changed[1], out[1], rtol=1e-5, atol=1e-6)


def test_fer_cnn_parameter_count_matches_hand_count():
    assert count_trainable(create_model("fer_cnn")) == FER_CNN_GREY == 9_828_551
    assert count_trainable(create_model("fer_cnn", in_chans=3)) == FER_CNN_RGB


def test_fer_cnn_pseudo_rgb_shape():
    model = create_model("fer_cnn", in_chans=3).eval()
    assert model(torch.randn(1, 3, 48, 48)).shape == (1, 7)
    assert model.preprocessing.channels == 3


def test_vgg19_output_and_default_all_trainable():
    model = create_model("vgg19_transfer").eval()
    assert model(torch.randn(2, 3, 48, 48)).shape == (2, 7)
    assert model.pretrained is False
    assert count_trainable(model) == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("scheme,expected", [
    ("all_conv", VGG_HEAD),
    # last 9 of 16 convs: conv8 256->256, conv9 256->512, convs 10-16 512->512
    ("last9_conv", VGG_HEAD + (256 * 256 * 9 + 256) + (256 * 512 * 9 + 512) + 7 * VGG_CONV_512),
    # last 5 modules of features: conv, ReLU, conv, ReLU, max-pool
    ("last5_modules", VGG_HEAD + 2 * VGG_CONV_512),
])
def test_vgg19_freezing_schemes(scheme, expected):
    model = create_model("vgg19_transfer", freeze=scheme)
    assert count_trainable(model) == expected
    trainable_convs = [m for m in model.features if isinstance(m, torch.nn.Conv2d) and m.weight.requires_grad]
    assert len(trainable_convs) == {"all_conv": 0, "last9_conv": 9, "last5_modules": 2}[scheme]


def test_vgg19_refuses_missing_weights_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        create_model("vgg19_transfer", pretrained_path=str(tmp_path / "missing.pth"))


def test_vgg19_loads_local_state_dict(tmp_path):
    from torchvision.models import vgg19

    reference = vgg19(weights=None)
    path = tmp_path / "vgg19.pth"
    torch.save(reference.state_dict(), path)
    model = create_model("vgg19_transfer", pretrained_path=str(path))
    assert model.pretrained is True
    assert torch.equal(model.features[0].weight, reference.features[0].weight)


def test_unknown_architecture_names_the_choices():
    with pytest.raises(ValueError, match="fer_cnn"):
        create_model("resnet9000")
    assert {"fer_cnn", "vgg19_transfer", "fer_vgg", "fer_vgg_m"} <= set(available_models())
