"""Warm-start training (recipe ``finetune``): it starts from a checkpoint's weights, and only warm-start recipes do."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from ml.checkpoint import build_checkpoint, read_checkpoint, save_atomic
from ml.evaluate import evaluate
from ml.models import create_model
from ml.recipes import get_recipe
from ml.train import TrainingError, build_state, fit
from tests.helpers import TINY_ARCH

from .conftest import TEST_DEVICE

FINETUNE = get_recipe("finetune").with_overrides(arch="fer_vgg", arch_kwargs=TINY_ARCH, batch_size=32)
SCRATCH = get_recipe("default").with_overrides(arch="fer_vgg", arch_kwargs=TINY_ARCH, batch_size=32, lr=0.05,
                                               eval_every=1)


def test_the_finetune_recipe_is_short_gentle_and_averaged():
    recipe, default = get_recipe("finetune"), get_recipe("default")
    assert recipe.warm_start and not default.warm_start
    assert recipe.epochs <= default.epochs // 10 and recipe.lr <= default.lr / 10 and recipe.ema_decay > 0
    assert recipe.arch == default.arch  # the shipped model's architecture


def test_warm_start_begins_from_the_checkpoint_weights_and_the_ema_from_them_too(tmp_path, tiny_data):
    train, val = tiny_data
    base = tmp_path / "base.pt"
    fit(train, val, SCRATCH, base, epochs=3, seed=0, device=TEST_DEVICE)
    state = build_state(FINETUNE, train.labels, steps_per_epoch=4, epochs=2, seed=1, device=torch.device("cpu"),
                        init_from=base)
    saved = read_checkpoint(base)["model"]
    for name, tensor in state.model.state_dict().items():
        assert torch.equal(tensor, saved[name].to(tensor.dtype)), name
    ema = {k.removeprefix("module."): v for k, v in state.ema.state_dict().items() if k.startswith("module.")}
    assert torch.equal(ema["features.0.0.weight"], saved["features.0.0.weight"])

    # Without warm_start the same recipe starts from fresh weights, not the checkpoint's. (An accuracy margin between
    # the two was flaky: on tiny data a random model sometimes scores near a 3-epoch one.)
    cold = build_state(replace(FINETUNE, warm_start=False), train.labels, steps_per_epoch=4, epochs=2, seed=1,
                       device=torch.device("cpu"))
    cold_weights = cold.model.state_dict()
    assert not any(torch.equal(cold_weights[name], saved[name].to(cold_weights[name].dtype))
                   for name in cold_weights if name.endswith(".weight"))
    warm_acc = evaluate(state.model, val.images, val.labels)["accuracy"]

    summary = fit(train, val, FINETUNE, tmp_path / "ft.pt", epochs=2, seed=1, device=TEST_DEVICE, init_from=base)
    assert summary["best_val_accuracy"] >= warm_acc - 0.15
    assert read_checkpoint(tmp_path / "ft.pt")["recipe"]["init_from"] == str(base)


def test_warm_start_needs_weights_of_its_architecture_and_scratch_refuses_them(tmp_path, tiny_data):
    train, val = tiny_data
    with pytest.raises(TrainingError, match="give the checkpoint to start from"):
        fit(train, val, FINETUNE, tmp_path / "a.pt", epochs=1, device=TEST_DEVICE)
    other = tmp_path / "other.pt"
    save_atomic(build_checkpoint(create_model("fer_vgg_m"), recipe={}, epoch=0, history=[]), other)
    with pytest.raises(TrainingError, match="it is a fer_vgg_m checkpoint and the recipe trains fer_vgg"):
        fit(train, val, FINETUNE, tmp_path / "b.pt", epochs=1, device=TEST_DEVICE, init_from=other)
    with pytest.raises(TrainingError, match="cannot start from .*no such file"):
        fit(train, val, FINETUNE, tmp_path / "c.pt", epochs=1, device=TEST_DEVICE, init_from=tmp_path / "missing.pt")
    with pytest.raises(TrainingError, match="trains from scratch"):
        fit(train, val, SCRATCH, tmp_path / "d.pt", epochs=1, device=TEST_DEVICE, init_from=other)
