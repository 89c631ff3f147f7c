from __future__ import annotations

import torch

from ml.augment import AugmentConfig, augment_batch
from ml.recipes import RECIPES


def test_identity_config_returns_input():
    x = torch.rand(4, 1, 48, 48)
    assert torch.equal(augment_batch(x, AugmentConfig(hflip=False)), x)


def test_each_sample_gets_its_own_transform():
    x = torch.rand(1, 1, 48, 48).expand(16, -1, -1, -1).contiguous()
    out = augment_batch(x, AugmentConfig(rotation_deg=30, scale=(0.8, 1.2), erasing_p=1.0),
                        torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    flat = out.view(16, -1)
    assert len({tuple(r[:50].tolist()) for r in flat}) == 16


def test_hflip_only_mirrors_some():
    x = torch.arange(48.0).view(1, 1, 1, 48).expand(32, 1, 48, 48) / 48
    out = augment_batch(x, AugmentConfig(hflip=True), torch.Generator().manual_seed(1))
    mirrored = torch.isclose(out, torch.flip(x, dims=[3]), atol=1e-4).flatten(1).all(1)
    same = torch.isclose(out, x, atol=1e-4).flatten(1).all(1)
    assert mirrored.any() and same.any() and (mirrored | same).all()


def test_every_recipe_augmentation_runs_and_stays_in_range():
    x = torch.rand(8, 1, 48, 48)
    for recipe in RECIPES.values():
        out = augment_batch(x, recipe.augment, torch.Generator().manual_seed(0))
        assert out.shape == x.shape
        assert out.min() >= 0 and out.max() <= 1, recipe.name


def test_seeded_generator_repeats():
    x = torch.rand(8, 1, 48, 48)
    cfg = RECIPES["seed-vgg19-c4"].augment
    a = augment_batch(x, cfg, torch.Generator().manual_seed(3))
    b = augment_batch(x, cfg, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_out_size_resamples_with_the_same_grid():
    x = torch.rand(6, 1, 48, 48)
    cfg = AugmentConfig(rotation_deg=10, erasing_p=0.5)
    small = augment_batch(x, cfg, torch.Generator().manual_seed(0), out_size=32)
    assert small.shape == (6, 1, 32, 32) and small.min() >= 0 and small.max() <= 1
    # Without geometric transforms the batch is still brought to the asked size, and a plain face stays plain.
    flat = torch.full((2, 1, 48, 48), 0.5)
    out = augment_batch(flat, AugmentConfig(hflip=False), out_size=36)
    assert out.shape == (2, 1, 36, 36) and torch.allclose(out, torch.full_like(out, 0.5))
