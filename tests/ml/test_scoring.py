from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from ml.data import FaceArrays
from ml.recipes import get_recipe
from ml.scoring import (
    cross_fit,
    cross_fit_probabilities,
    fold_assignment,
    knn_label_quality,
    pooled_features,
    rank_average,
    score_from_probabilities,
    score_labels,
    scoring_recipe,
)
from tests.helpers import TINY_ARCH

from .conftest import synthetic_faces

RECIPE = get_recipe("scoring").with_overrides(arch_kwargs=TINY_ARCH, batch_size=32)


def test_flipped_labels_rank_first_given_good_probabilities():
    rng = np.random.default_rng(0)
    labels = np.arange(700) % 7
    probs = np.full((700, 7), 0.02)
    probs[np.arange(700), labels] = 0.88
    flipped = rng.choice(700, 35, replace=False)
    noisy = labels.copy()
    noisy[flipped] = (labels[flipped] + 1) % 7
    scores = score_from_probabilities(noisy, probs)
    worst = set(scores.order()[:35].tolist())
    assert worst == set(flipped.tolist())
    assert set(np.flatnonzero(scores.is_issue)) == set(flipped.tolist())
    assert (scores.suggested[flipped] == labels[flipped]).all()


def test_unknown_ranking_method():
    with pytest.raises(ValueError, match="self_confidence"):
        score_from_probabilities(np.zeros(7, dtype=int), np.full((7, 7), 1 / 7), ranking="vibes")


def test_folds_are_stratified_and_cover_everything():
    labels = np.arange(70) % 7
    assign = fold_assignment(labels, 4, seed=0)
    assert set(assign) == {0, 1, 2, 3}
    for k in range(4):
        assert len(set(labels[assign == k])) == 7


def test_crash_in_a_later_fold_does_not_redo_earlier_folds(tmp_path):
    images, labels = synthetic_faces(140)
    data = FaceArrays.from_arrays(images, labels)
    events = []

    def crash_in_fold_2(event):
        events.append(event)
        if event.get("fold") == 2 and event["kind"] == "epoch":
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated"):
        score_labels(data, folds=2, recipe=RECIPE, epochs=1, work_dir=tmp_path, progress=crash_in_fold_2)
    assert {"kind": "fold", "fold": 1, "folds": 2, "reused": False} in events
    events.clear()
    scores = score_labels(data, folds=2, recipe=RECIPE, epochs=1, work_dir=tmp_path, progress=events.append)
    assert {"kind": "fold", "fold": 1, "folds": 2, "reused": True} in events
    assert not any(e.get("fold") == 1 and e["kind"] == "epoch" for e in events)
    assert scores.probabilities.shape == (140, 7) and not np.isnan(scores.probabilities).any()
    assert not list(tmp_path.glob("*.dynamics.npz"))  # folds rank with held-out predictions: no dynamics to pay for


def test_cross_fit_keeps_held_out_probabilities_with_and_without_tta(tmp_path):
    images, labels = synthetic_faces(70)
    data = FaceArrays.from_arrays(images, labels)
    first = cross_fit(data, folds=2, recipe=RECIPE, epochs=1, work_dir=tmp_path)
    assert not np.isnan(first.probs_no_tta).any()
    np.testing.assert_allclose(first.probs_no_tta.sum(1), 1.0, atol=1e-5)
    assert not np.allclose(first.probs, first.probs_no_tta)  # flip TTA changes them
    again = cross_fit(data, folds=2, recipe=RECIPE, epochs=1, work_dir=tmp_path)  # reused folds keep both
    np.testing.assert_array_equal(again.probs_no_tta, first.probs_no_tta)
    np.testing.assert_array_equal(cross_fit_probabilities(data, folds=2, recipe=RECIPE, epochs=1, work_dir=tmp_path),
                                  first.probs)


def test_pooled_features_are_the_global_average_of_forward_features():
    import torch

    from ml.evaluate import to_input
    from ml.models import create_model

    model = create_model("fer_vgg", **TINY_ARCH).eval()
    images, _ = synthetic_faces(5)
    features = pooled_features(model, images, batch_size=2)
    assert features.shape == (5, TINY_ARCH["widths"][-1])
    with torch.inference_mode():
        fmap = model.forward_features(to_input(images, model, torch.device("cpu")))
    np.testing.assert_allclose(features, fmap.mean((2, 3)).numpy(), rtol=1e-4, atol=1e-5)


def test_knn_label_quality_finds_the_face_labelled_unlike_its_neighbours():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16)) * 5
    labels = np.repeat([0, 1, 2], 20)
    features = centres[labels] + rng.normal(size=(60, 16)) * 0.1
    noisy = labels.copy()
    noisy[7] = 2
    quality = knn_label_quality(features * rng.uniform(0.5, 3, size=(60, 1)), noisy, k=5)  # cosine: scale-free
    assert quality[7] == 0.0  # the face itself is not its own neighbour
    assert np.argsort(quality)[0] == 7
    assert quality[np.arange(60) != 7].min() >= 0.8


def test_rank_average_orders_by_both_scores():
    a = np.array([0.1, 0.2, 0.9, 0.5])
    b = np.array([10.0, 1.0, 30.0, 20.0])  # another scale
    combined = rank_average(a, b)
    np.testing.assert_allclose(combined, [(0 + 1 / 3) / 2, (1 / 3 + 0) / 2, 1.0, (2 / 3 + 2 / 3) / 2])


@pytest.mark.parametrize("filter_by", ["prune_by_noise_rate", "prune_by_class", "both"])
def test_scoring_never_forks_a_process_pool(monkeypatch, filter_by):
    """Celery workers call this right after torch ran its threads; a fork then can deadlock the children (seen in a
    worker: cleanlab's pool children stuck on a futex). cleanlab forks only for these filters, with n_jobs > 1."""
    import multiprocessing

    def no_fork(*args, **kwargs):
        raise AssertionError("find_label_issues forked a multiprocessing pool")

    monkeypatch.setattr(multiprocessing, "Pool", no_fork)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 7, 700)
    probs = rng.dirichlet(np.ones(7), 700)
    probs[np.arange(700), labels] += 1.0
    scores = score_from_probabilities(labels, probs / probs.sum(1, keepdims=True), filter_by=filter_by)
    assert len(scores.quality) == 700


def test_the_scoring_recipe_trains_the_default_models_architecture_on_a_gpu():
    scoring, default = get_recipe("scoring"), get_recipe("default")
    assert scoring_recipe("cpu") == scoring and scoring.arch == "fer_vgg"
    on_gpu = scoring_recipe("cuda")  # the choice only: nothing runs on the device
    assert on_gpu.arch == default.arch != scoring.arch
    assert replace(on_gpu, arch=scoring.arch) == scoring  # the schedule stays the scoring recipe's
