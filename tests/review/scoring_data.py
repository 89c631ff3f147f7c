"""A tiny synthetic Training set in the database, and the tiny recipe that scores it in seconds."""

from __future__ import annotations

import numpy as np

from apps.faces.services import FaceRecord, FaceWriter, dataset_get_or_create
from tests.helpers import TINY_ARCH

TINY_RECIPE = {"arch_kwargs": dict(TINY_ARCH), "batch_size": 32}


def synthetic_faces(per_class: int = 8, seed: int = 0) -> None:
    """7 classes, each a brightness band at its own height, with noise; every face distinct."""
    rng = np.random.default_rng(seed)
    records = []
    row = 0
    for label in range(7):
        for _ in range(per_class):
            image = rng.integers(0, 60, size=(48, 48), dtype=np.uint8)
            image[label * 6:label * 6 + 8, :] = 220
            records.append(FaceRecord(raw=image.tobytes(), split="Training", label=label, source_row=row))
            row += 1
    records.append(FaceRecord(raw=rng.integers(0, 255, 2304, dtype=np.uint8).tobytes(), split="PublicTest", label=0,
                              source_row=row))
    writer = FaceWriter(dataset_get_or_create(name="fer2013"))
    with writer.scope():
        writer.write(records)
