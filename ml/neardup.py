"""Near-duplicate faces: the same photo shifted, cropped, rescaled or with other brightness.

Two pieces of evidence per pair, each searched through scikit-learn's ``NearestNeighbors`` (a radius query, so every
pair inside the threshold is found, not only the k nearest):

- a perceptual hash (``imagehash.phash``: the signs of the 8x8 lowest DCT frequencies against their median, so a
  brightness change or a rescale barely moves it), compared by Hamming distance on its 64 bits;
- the cosine similarity of L2-normalised pooled CNN features (``ml.scoring.pooled_features``), which survives a
  shift or a crop that moves the hash further.

A pair is a near-duplicate when its hash distance is at most ``hash_alone``, or when its cosine is at least
``cosine`` and its hash distance at most ``hash_with_cosine`` (features alone also match different people with the
same expression). The defaults were chosen on injected copies of FER-2013 faces: ``benchmarks/bench_near_duplicates.py``
and docs/ml.md#near-duplicates. Pairs are joined into groups with a union-find. Framework-free: no Django here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HASH_BITS = 64


@dataclass(frozen=True)
class Thresholds:
    # Chosen on injected copies (docs/ml.md#near-duplicates): precision first, since a pair sends faces to reviewers.
    hash_alone: int = 6  # Hamming distance (of 64 bits) at or below which the hashes alone make a pair
    cosine: float = 0.985  # feature cosine at or above which a pair is made ...
    hash_with_cosine: int = 16  # ... when the hashes are also at most this far apart

    def __post_init__(self) -> None:
        if not 0 <= self.hash_alone <= self.hash_with_cosine <= HASH_BITS:
            raise ValueError(f"need 0 <= hash_alone <= hash_with_cosine <= {HASH_BITS}")
        if not -1.0 <= self.cosine <= 1.0:
            raise ValueError("cosine must be between -1 and 1")


@dataclass(frozen=True)
class Pair:
    """Two faces (row indices, ``a < b``) and the evidence that they are one photo."""

    a: int
    b: int
    hash_distance: int
    cosine: float


def perceptual_hashes(images: np.ndarray) -> np.ndarray:
    """(N, 64) bool pHash bits of uint8 (N, H, W) grey faces."""
    import imagehash
    from PIL import Image

    images = np.asarray(images, dtype=np.uint8)
    bits = np.zeros((len(images), HASH_BITS), dtype=bool)
    for i, image in enumerate(images):
        bits[i] = imagehash.phash(Image.fromarray(image, mode="L")).hash.reshape(-1)
    return bits


def unit_rows(features: np.ndarray) -> np.ndarray:
    features = np.asarray(features, dtype=np.float32)
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


def _radius_pairs(data: np.ndarray, *, metric: str, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Every (i, j), i < j, within ``radius`` of each other under ``metric`` (brute force, exact)."""
    from sklearn.neighbors import NearestNeighbors

    if len(data) < 2:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    index = NearestNeighbors(metric=metric, algorithm="brute").fit(data)
    neighbours = index.radius_neighbors(data, radius=radius, return_distance=False)
    lengths = np.fromiter((len(n) for n in neighbours), dtype=np.int64, count=len(neighbours))
    left = np.repeat(np.arange(len(data), dtype=np.int64), lengths)
    right = np.concatenate(neighbours).astype(np.int64) if lengths.sum() else np.zeros(0, dtype=np.int64)
    keep = left < right
    return left[keep], right[keep]


def hash_candidates(bits: np.ndarray, *, max_distance: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs whose hashes differ in at most ``max_distance`` bits (scikit-learn's Hamming metric is a fraction)."""
    bits = np.asarray(bits, dtype=bool)
    return _radius_pairs(bits, metric="hamming", radius=(max_distance + 0.5) / bits.shape[1])


def feature_candidates(unit: np.ndarray, *, min_cosine: float) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of L2-normalised feature rows whose cosine similarity is at least ``min_cosine``."""
    return _radius_pairs(unit, metric="cosine", radius=max(0.0, 1.0 - min_cosine) + 1e-6)


def evidence(bits: np.ndarray, unit: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hash distance and cosine of the pairs (a[k], b[k])."""
    distance = (bits[a] != bits[b]).sum(axis=1).astype(np.int64)
    cosine = np.einsum("ij,ij->i", unit[a], unit[b]).astype(np.float64)
    return distance, cosine


def near_duplicate_pairs(bits: np.ndarray, features: np.ndarray, thresholds: Thresholds = Thresholds()) -> list[Pair]:
    """Every pair that the thresholds call a near-duplicate, with its evidence, sorted by (a, b)."""
    bits = np.asarray(bits, dtype=bool)
    unit = unit_rows(features)
    if len(bits) != len(unit):
        raise ValueError(f"{len(bits)} hashes but {len(unit)} feature rows")
    ha, hb = hash_candidates(bits, max_distance=thresholds.hash_alone)
    fa, fb = feature_candidates(unit, min_cosine=thresholds.cosine)
    candidates = np.unique(np.concatenate([np.stack([ha, hb], 1), np.stack([fa, fb], 1)]).reshape(-1, 2), axis=0)
    if not len(candidates):
        return []
    a, b = candidates[:, 0], candidates[:, 1]
    distance, cosine = evidence(bits, unit, a, b)
    accepted = (distance <= thresholds.hash_alone) | (
        (cosine >= thresholds.cosine) & (distance <= thresholds.hash_with_cosine))
    return [Pair(int(i), int(j), int(d), float(c))
            for i, j, d, c, ok in zip(a, b, distance, cosine, accepted, strict=True) if ok]


def groups_from_pairs(n: int, pairs: list[Pair]) -> list[list[int]]:
    """Connected components (union-find) of two or more rows, each sorted, ordered by their first row."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for pair in pairs:
        ra, rb = root(pair.a), root(pair.b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members: dict[int, list[int]] = {}
    for i in range(n):
        members.setdefault(root(i), []).append(i)
    return sorted((rows for rows in members.values() if len(rows) > 1), key=lambda rows: rows[0])


def find_near_duplicates(images: np.ndarray, features: np.ndarray, thresholds: Thresholds = Thresholds(),
                         ) -> tuple[list[Pair], list[list[int]]]:
    """Pairs and groups of ``images`` (uint8 N x H x W) given their pooled features (N x C)."""
    pairs = near_duplicate_pairs(perceptual_hashes(images), features, thresholds)
    return pairs, groups_from_pairs(len(images), pairs)
