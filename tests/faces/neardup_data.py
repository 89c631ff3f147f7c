"""Tiny synthetic faces for the near-duplicate tests: smooth, distinct images (a few Gaussian blobs over a gradient)
and the copies the search must find (shifted, cropped, rescaled, brightness-changed)."""

from __future__ import annotations

import numpy as np
from PIL import Image

SIDE = 48


def smooth_face(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIDE, 0:SIDE].astype(np.float64)
    image = rng.uniform(40, 90) + rng.uniform(-1, 1) * xx + rng.uniform(-1, 1) * yy
    for _ in range(6):
        cy, cx, sigma = rng.uniform(6, 42), rng.uniform(6, 42), rng.uniform(3, 9)
        image += rng.uniform(-110, 110) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma ** 2))
    return np.clip(image, 0, 255).astype(np.uint8)


def _resize(image: np.ndarray, side: int) -> np.ndarray:
    return np.asarray(Image.fromarray(image).resize((side, side), Image.Resampling.BILINEAR), dtype=np.uint8)


def brightened(image: np.ndarray, delta: int = 30) -> np.ndarray:
    return np.clip(image.astype(np.int16) + delta, 0, 255).astype(np.uint8)


def rescaled(image: np.ndarray, side: int = 28) -> np.ndarray:
    return _resize(_resize(image, side), SIDE)


def shifted(image: np.ndarray, dy: int = 1, dx: int = 1) -> np.ndarray:
    padded = np.pad(image, 3, mode="edge")
    return padded[3 + dy:3 + dy + SIDE, 3 + dx:3 + dx + SIDE].copy()


def cropped(image: np.ndarray, keep: int = 45) -> np.ndarray:
    return _resize(image[1:1 + keep, 1:1 + keep], SIDE)
