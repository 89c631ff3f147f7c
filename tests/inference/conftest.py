from __future__ import annotations

from pathlib import Path

import pytest
import torch

from apps.inference import runtime
from apps.inference.services.registry import model_version_register
from ml.checkpoint import build_checkpoint, save_atomic
from ml.models import create_model

TINY = {"widths": (8, 16, 16, 32), "depths": (1, 1, 1, 1)}


def write_tiny_checkpoint(path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    model = create_model("fer_vgg", **TINY)
    history = [{"epoch": 1, "val_accuracy": 0.25 + seed / 100, "val_macro_f1": 0.125}]
    save_atomic(build_checkpoint(model, recipe={"name": "tiny", "n_train": 10}, epoch=1, history=history), path)
    return path


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    return write_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny-v1.pt", seed=1)


@pytest.fixture(scope="session")
def tiny_checkpoint_v2(tmp_path_factory) -> Path:
    return write_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny-v2.pt", seed=2)


@pytest.fixture
def active_version(db, tiny_checkpoint):
    return model_version_register(checkpoint_path=tiny_checkpoint, name="tiny-v1", activate=True)


@pytest.fixture(autouse=True)
def fresh_runtime():
    """Each test starts with no model loaded in this process."""
    runtime.clear()
    yield
    runtime.clear()
