"""Label snapshots (fingerprint, changes) and vote distributions for soft labels."""

from __future__ import annotations

import numpy as np
import pytest

from apps.review.models import Vote
from apps.training.gate import promotion_gate_decide
from apps.training.snapshot import LabelSnapshot, label_snapshot_current, labels_changed_since, vote_distributions
from tests.accounts.factories import UserFactory
from tests.faces.factories import FaceImageFactory
from tests.review.factories import ReviewItemFactory


def test_fingerprint_is_over_sorted_id_label_pairs_and_survives_encoding():
    import hashlib

    snap = LabelSnapshot(np.array([3, 7], dtype=np.int64), np.array([1, 6], dtype=np.int64))
    assert snap.fingerprint == hashlib.sha256(b"3:1\n7:6\n").hexdigest()
    again = LabelSnapshot.decode(snap.encode())
    assert again.fingerprint == snap.fingerprint and len(again) == 2
    other = LabelSnapshot(np.array([3, 9], dtype=np.int64), np.array([2, 0], dtype=np.int64))
    assert snap.changed_against(other) == 3  # 3 relabelled, 7 new, 9 gone
    assert snap.changed_against(snap) == 0


@pytest.mark.django_db
def test_current_snapshot_skips_excluded_unlabelled_and_other_splits():
    kept = FaceImageFactory(original_label=2)
    FaceImageFactory(excluded=True)
    FaceImageFactory(current_label=None)
    FaceImageFactory(split="PublicTest")
    snap = label_snapshot_current()
    assert snap.face_ids.tolist() == [kept.pk] and snap.labels.tolist() == [2]


@pytest.mark.django_db
def test_without_a_run_snapshot_changes_count_against_the_original_labels():
    FaceImageFactory(original_label=2, current_label=3)
    FaceImageFactory(original_label=2, excluded=True)
    FaceImageFactory(original_label=2)
    assert labels_changed_since(None) == 2


@pytest.mark.django_db
def test_vote_distributions_prefer_reviewer_votes_then_corrections_then_ferplus():
    plain = FaceImageFactory(original_label=3)
    ferplus = FaceImageFactory(original_label=3, ferplus_votes=[5, 5, 0, 0, 0, 0, 0, 2, 1, 0])
    corrected = FaceImageFactory(original_label=3, current_label=4, ferplus_votes=[0, 10, 0, 0, 0, 0, 0, 0, 0, 0])
    voted = FaceImageFactory(original_label=3, ferplus_votes=[0, 10, 0, 0, 0, 0, 0, 0, 0, 0])
    item = ReviewItemFactory(face=voted)
    for choice in [3, 5, 7]:  # 7 = "not a face": no emotion, ignored
        Vote.objects.create(item=item, reviewer=UserFactory(), choice=choice, round=1)
    old_round = ReviewItemFactory(face=plain, round=2)
    Vote.objects.create(item=old_round, reviewer=UserFactory(), choice=0, round=1)
    Vote.objects.create(item=old_round, reviewer=UserFactory(), choice=0, round=1)

    dist, with_votes = vote_distributions(label_snapshot_current())
    rows = dict(zip([plain.pk, ferplus.pk, corrected.pk, voted.pk], dist, strict=True))
    assert rows[plain.pk].tolist() == [0, 0, 0, 1, 0, 0, 0]  # old-round votes do not count
    assert rows[ferplus.pk].tolist() == [0, 0, 0, 0.5, 0, 0, 0.5]  # happiness and neutral; contempt dropped
    assert rows[corrected.pk].tolist() == [0, 0, 0, 0, 1, 0, 0]  # reviewers' correction beats FER+
    assert rows[voted.pk].tolist() == [0, 0, 0, 0.5, 0, 0.5, 0]
    assert with_votes == 2
    assert np.allclose(dist.sum(1), 1)


def test_the_gate_both_ways_and_its_tolerance():
    previous = {"accuracy": 0.60, "macro_f1": 0.50}
    ok, reason = promotion_gate_decide(candidate={"accuracy": 0.596, "macro_f1": 0.497}, previous=previous,
                                       previous_name="version #1", tolerance=0.5)
    assert ok and "within tolerance 0.5" in reason and "version #1" in reason
    ok, reason = promotion_gate_decide(candidate={"accuracy": 0.594, "macro_f1": 0.52}, previous=previous,
                                       tolerance=0.5)
    assert not ok and "accuracy drops 0.60 points" in reason and "macro-F1" not in reason.split(";")[0]
    ok, reason = promotion_gate_decide(candidate={"accuracy": 0.70, "macro_f1": 0.40}, previous=previous,
                                       tolerance=0.5)
    assert not ok and "macro-F1 drops 10.00 points" in reason
    assert promotion_gate_decide(candidate=None, previous=None)[0] is True
    assert promotion_gate_decide(candidate=None, previous=previous)[0] is False
