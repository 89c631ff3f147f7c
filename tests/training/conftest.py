"""Tiny synthetic faces in the database and a tiny recipe, so that a whole training run takes a second or two."""

from __future__ import annotations

import numpy as np
import pytest

from apps.faces.services import FaceRecord, FaceWriter, dataset_get_or_create
from apps.inference.services.registry import model_version_register
from tests.helpers import TINY_ARCH, write_tiny_checkpoint

# The "scoring" recipe trains fer_vgg; these make it tiny and deterministic (no bf16, no augmentation noise needed).
TINY = {"arch_kwargs": dict(TINY_ARCH), "batch_size": 16, "amp_bf16": False}
BAD = {**TINY, "lr": 1e-12}  # never learns: random weights (a learning rate must be > 0)
NAN = {**TINY, "lr": 1e12, "scheduler": "none", "label_smoothing": 0.0}


def run_kwargs(**extra) -> dict:
    return {"trigger": "admin", "recipe_name": "scoring", "epochs": 3, "recipe_overrides": TINY, **extra}


def synthetic_faces(*, per_class: int = 10, test_per_class: int = 4, seed: int = 0) -> None:
    """7 classes, each a bright band at its own height over noise: easy to learn, every face distinct."""
    rng = np.random.default_rng(seed)
    records, row = [], 0
    for split, count in (("Training", per_class), ("PublicTest", test_per_class)):
        for label in range(7):
            for _ in range(count):
                image = rng.integers(0, 60, size=(48, 48), dtype=np.uint8)
                image[label * 6:label * 6 + 8, :] = 220
                records.append(FaceRecord(raw=image.tobytes(), split=split, label=label, source_row=row))
                row += 1
    writer = FaceWriter(dataset_get_or_create(name="fer2013"))
    with writer.scope():
        writer.write(records)


@pytest.fixture(autouse=True)
def training_settings(settings, tmp_path):
    settings.TRAINING_DIR = tmp_path / "training"
    settings.INFERENCE_REFRESH_ON_ACTIVATE = False
    settings.TRAINING_PROMOTION_TOLERANCE = 0.5
    settings.WORK_HEARTBEAT_TIMEOUT = 900
    settings.TRAINING_AUTO_MIN_CHANGED = 200
    return settings  # the model cache is emptied around every test (tests/conftest.py, fresh_runtime)


@pytest.fixture
def faces(db):
    synthetic_faces()


@pytest.fixture(scope="session")
def random_checkpoint(tmp_path_factory):
    return write_tiny_checkpoint(tmp_path_factory.mktemp("training-ckpt") / "random.pt", seed=7)


@pytest.fixture
def random_active_version(db, random_checkpoint):
    """An active version with random weights (what a fresh run should beat)."""
    return model_version_register(checkpoint_path=random_checkpoint, name="random", activate=True)
