"""The 2-D map of pooled features: UMAP and t-SNE keep synthetic clusters apart, land in the unit square, and a seed
fixes the layout."""

from __future__ import annotations

import numpy as np
import pytest

from ml.embedding import embed_2d, knn_label_agreement, unit_square


def clustered(n_per: int = 30, clusters: int = 3, dims: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative features (like ReLU activations) around ``clusters`` directions, with noise."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 1, size=(clusters, dims)) * (rng.uniform(size=(clusters, dims)) > 0.5)
    labels = np.repeat(np.arange(clusters), n_per)
    features = np.abs(centres[labels] * 3 + rng.normal(0, 0.15, size=(len(labels), dims)))
    return features.astype(np.float32), labels


@pytest.mark.parametrize("method", ["umap", "tsne"])
def test_map_keeps_clusters_apart_in_the_unit_square(method):
    features, labels = clustered()
    points = embed_2d(features, method=method, seed=0)
    assert points.shape == (len(labels), 2) and points.dtype == np.float32
    assert points.min() >= 0 and points.max() <= 1 and np.isclose(points.max(0).max(), 1)
    assert knn_label_agreement(points, labels, k=5) > 0.95
    shuffled = np.random.default_rng(1).permutation(labels)
    assert knn_label_agreement(points, shuffled, k=5) < 0.6  # the measure itself can fail
    assert np.array_equal(points, embed_2d(features, method=method, seed=0))  # the seed fixes the layout


def test_tiny_sets_and_bad_input():
    features, _ = clustered(n_per=2, clusters=3)
    assert embed_2d(features[:5], method="umap").shape == (5, 2)
    assert embed_2d(features[:5], method="tsne").shape == (5, 2)
    with pytest.raises(ValueError, match="at least 5"):
        embed_2d(features[:4])
    with pytest.raises(ValueError, match="unknown embedding method"):
        embed_2d(features, method="pca")


def test_unit_square_keeps_the_aspect_ratio():
    points = unit_square(np.array([[10.0, 5.0], [14.0, 5.0], [12.0, 7.0]]))
    assert np.allclose(points, [[0, 0.25], [1, 0.25], [0.5, 0.75]])
    assert np.allclose(unit_square(np.ones((3, 2))), 0.5)
