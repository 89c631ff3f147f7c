"""A 2-D map of a split's faces: their pooled features (``ml.scoring.pooled_features``) laid out by UMAP (umap-learn,
the default) or t-SNE (scikit-learn), normalised into the unit square so that any page can draw it as it is.

Features are L2-normalised first: on unit vectors Euclidean distance orders neighbours as cosine does (as in
``ml.scoring.knn_label_quality``), and ReLU activations differ more in direction than in length.
"""

from __future__ import annotations

import numpy as np

METHODS = ("umap", "tsne")
DEFAULT_METHOD = "umap"
MIN_FACES = 5  # fewer points than this have no neighbourhoods worth laying out
UMAP_NEIGHBOURS = 15  # umap-learn's default
TSNE_PERPLEXITY = 30.0  # scikit-learn's default


def unit_rows(features: np.ndarray) -> np.ndarray:
    features = np.asarray(features, dtype=np.float32)
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


def unit_square(points: np.ndarray) -> np.ndarray:
    """``points`` (N, 2) shifted and scaled into [0, 1]^2 with their aspect ratio kept: the longer side spans 0-1,
    the shorter one is centred."""
    points = np.asarray(points, dtype=np.float64)
    low, high = points.min(0), points.max(0)
    span = float((high - low).max())
    if span <= 0:
        return np.full(points.shape, 0.5, dtype=np.float32)
    scaled = (points - low) / span
    scaled += (1.0 - (high - low) / span) / 2
    return np.clip(scaled, 0.0, 1.0).astype(np.float32)


def embed_2d(features: np.ndarray, *, method: str = DEFAULT_METHOD, seed: int = 0) -> np.ndarray:
    """(N, 2) float32 coordinates in [0, 1] of ``features`` (N, C). ``seed`` fixes the layout (UMAP then runs on one
    thread, which is what makes it reproducible). ``ValueError`` for an unknown method or fewer than ``MIN_FACES``
    rows."""
    if method not in METHODS:
        raise ValueError(f"unknown embedding method {method!r}; choose one of {', '.join(METHODS)}")
    features = np.asarray(features)
    if features.ndim != 2 or len(features) < MIN_FACES:
        raise ValueError(f"need at least {MIN_FACES} feature rows (N, C), got shape {features.shape}")
    unit = unit_rows(features)
    n = len(unit)
    if method == "umap":
        import umap  # imports numba (~20 s the first time): only where a map is made

        # Spectral initialisation needs a graph larger than its eigenvectors; tiny sets start from random points.
        reducer = umap.UMAP(n_components=2, n_neighbors=min(UMAP_NEIGHBOURS, n - 1), min_dist=0.1,
                            metric="euclidean", random_state=seed, n_jobs=1, init="spectral" if n > 50 else "random")
        points = reducer.fit_transform(unit)
    else:
        from sklearn.manifold import TSNE

        perplexity = min(TSNE_PERPLEXITY, (n - 1) / 3)  # scikit-learn refuses a perplexity of n or more
        points = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(unit)
    return unit_square(points)


def knn_label_agreement(points: np.ndarray, labels: np.ndarray, *, k: int = 10) -> float:
    """Mean share of each point's ``k`` nearest neighbours (itself left out) that carry its label: how well a space
    keeps the classes together. Compare a map's value with the features' own (``unit_rows`` first)."""
    from sklearn.neighbors import NearestNeighbors

    labels = np.asarray(labels)
    k = min(k, len(labels) - 1)
    if k < 1:
        raise ValueError("need at least two points")
    neighbours = NearestNeighbors(n_neighbors=k + 1).fit(points).kneighbors(points, return_distance=False)[:, 1:]
    return float((labels[neighbours] == labels[:, None]).mean())
