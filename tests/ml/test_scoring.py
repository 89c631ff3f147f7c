from __future__ import annotations

import numpy as np
import pytest

from ml.data import FaceArrays
from ml.recipes import get_recipe
from ml.scoring import fold_assignment, score_from_probabilities, score_labels

from .conftest import TINY_ARCH, synthetic_faces

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
