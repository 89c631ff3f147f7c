from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from ml.data import FaceArrays

# The device the training tests pin (CPU, so that results are the same on every machine here); the GPU check
# (scripts/gpu_check.sh) sets ML_TEST_DEVICE=cuda to run them on the card.
TEST_DEVICE = os.environ.get("ML_TEST_DEVICE", "cpu")


def synthetic_faces(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Faces whose class is written as a bright horizontal band: learnable in a few epochs by a tiny CNN."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 7
    images = rng.integers(0, 60, size=(n, 48, 48)).astype(np.uint8)
    for i, y in enumerate(labels):
        images[i, y * 6:y * 6 + 6, :] += 150
    return images, labels


def write_kaggle_csv(path: Path, n_train: int = 280, n_test: int = 70, seed: int = 0) -> Path:
    images, labels = synthetic_faces(n_train + n_test, seed)
    with open(path, "w") as fh:
        fh.write("emotion,pixels,Usage\n")
        for i, (img, y) in enumerate(zip(images, labels, strict=True)):
            usage = "Training" if i < n_train else "PublicTest"
            fh.write(f"{y},{' '.join(map(str, img.ravel()))},{usage}\n")
    return path



@pytest.fixture(scope="session")
def kaggle_csv(tmp_path_factory) -> Path:
    return write_kaggle_csv(tmp_path_factory.mktemp("fer") / "fer2013.csv")


@pytest.fixture
def tiny_data() -> tuple[FaceArrays, FaceArrays]:
    images, labels = synthetic_faces(350)
    return (FaceArrays.from_arrays(images[:280], labels[:280]),
            FaceArrays.from_arrays(images[280:], labels[280:], usage="PublicTest"))
