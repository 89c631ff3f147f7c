from __future__ import annotations

import pytest
from django.utils import timezone

from apps.faces.models import FaceImage
from apps.review.choices import NOT_A_FACE, UNSURE
from apps.review.models import LabelHistory, LabelScore, ReviewItem, ScoringRun, Skip, Vote
from apps.review.services import (
    ReviewError,
    review_gold_set,
    review_item_next_for,
    review_item_reopen,
    review_item_settle_admin,
    review_item_skip,
    review_vote_cast,
    review_vote_undo,
    votes_outcome,
)
from tests.faces.factories import FaceImageFactory

from .factories import ReviewItemFactory, leased_to

pytestmark = pytest.mark.django_db


def test_outcome_quorum_rules(settings):
    assert votes_outcome([3]).settled_choice is None
    assert votes_outcome([3, 3]).settled_choice == 3
    assert votes_outcome([3, 4]) == votes_outcome([4, 3])
    assert votes_outcome([3, 4]).settled_choice is None and not votes_outcome([3, 4]).disputed
    assert votes_outcome([3, 4, 4]).settled_choice == 4
    assert votes_outcome([3, 4, 5]).disputed
    assert votes_outcome([UNSURE, UNSURE, 3]).settled_choice is None  # unsure is no vote
    assert not votes_outcome([UNSURE, UNSURE, UNSURE, 3, 4]).disputed  # only 2 counted votes
    assert votes_outcome([NOT_A_FACE, UNSURE, NOT_A_FACE]).settled_choice == NOT_A_FACE
    settings.REVIEW_QUORUM = 3
    assert votes_outcome([3, 3]).settled_choice is None
    assert votes_outcome([3, 3, 4]).disputed


def test_two_matching_votes_settle_and_write_history(reviewers):
    item = ReviewItemFactory(face__original_label=3)
    r1, r2 = reviewers[:2]
    review_vote_cast(user=r1, item_id=leased_to(item, r1).pk, choice=4)
    item.refresh_from_db()
    assert item.status == ReviewItem.Status.OPEN
    review_vote_cast(user=r2, item_id=leased_to(item, r2).pk, choice=4)
    item.refresh_from_db()
    face = FaceImage.objects.get(pk=item.face_id)
    assert item.status == ReviewItem.Status.SETTLED and item.settled_label == 4 and item.settled_at
    assert face.current_label == 4 and face.original_label == 3  # the original label is never overwritten
    (history,) = LabelHistory.objects.filter(face=face)
    assert history.kind == LabelHistory.Kind.QUORUM and history.actor is None
    assert (history.old_label, history.new_label) == (3, 4)
    assert [(v["reviewer"], v["choice"]) for v in history.votes] == [("reviewer0", 4), ("reviewer1", 4)]
    with pytest.raises(ReviewError, match="no review item"):  # settled: nothing to vote on, as for a missing id
        review_vote_cast(user=reviewers[2], item_id=item.pk, choice=4)


def test_unsure_does_not_count_and_three_different_votes_dispute(reviewers):
    item = ReviewItemFactory()
    review_vote_cast(user=reviewers[0], item_id=leased_to(item, reviewers[0]).pk, choice=UNSURE)
    review_vote_cast(user=reviewers[1], item_id=leased_to(item, reviewers[1]).pk, choice=2)
    review_vote_cast(user=reviewers[2], item_id=leased_to(item, reviewers[2]).pk, choice=UNSURE)
    item.refresh_from_db()
    assert item.status == ReviewItem.Status.OPEN
    review_vote_cast(user=reviewers[3], item_id=leased_to(item, reviewers[3]).pk, choice=5)
    item.refresh_from_db()
    assert item.status == ReviewItem.Status.OPEN  # 2 counted votes of 3
    other = ReviewItemFactory()
    for reviewer, choice in zip(reviewers, [0, 1, 2], strict=False):
        review_vote_cast(user=reviewer, item_id=leased_to(other, reviewer).pk, choice=choice)
    other.refresh_from_db()
    assert other.status == ReviewItem.Status.DISPUTED
    assert FaceImage.objects.get(pk=other.face_id).current_label == 3
    history = review_item_settle_admin(admin=reviewers[3], item_id=other.pk, choice=1)
    assert history.kind == LabelHistory.Kind.ADMIN and history.actor == reviewers[3] and history.new_label == 1


def test_not_a_face_excludes_the_image(reviewers):
    item = ReviewItemFactory()
    review_vote_cast(user=reviewers[0], item_id=leased_to(item, reviewers[0]).pk, choice=NOT_A_FACE)
    review_vote_cast(user=reviewers[1], item_id=leased_to(item, reviewers[1]).pk, choice=NOT_A_FACE)
    face = FaceImage.objects.get(pk=item.face_id)
    assert face.excluded and face.current_label == 3
    history = LabelHistory.objects.get(face=face)
    assert not history.old_excluded and history.new_excluded


def test_one_vote_per_reviewer(reviewers):
    item = ReviewItemFactory()
    review_vote_cast(user=reviewers[0], item_id=leased_to(item, reviewers[0]).pk, choice=1)
    with pytest.raises(ReviewError, match="already voted"):
        review_vote_cast(user=reviewers[0], item_id=item.pk, choice=2)
    with pytest.raises(ReviewError):
        review_vote_cast(user=reviewers[0], item_id=item.pk, choice=9)


def test_undo_after_settling_reopens_and_reverts(reviewers):
    item = ReviewItemFactory(face__original_label=3)
    review_vote_cast(user=reviewers[0], item_id=leased_to(item, reviewers[0]).pk, choice=NOT_A_FACE)
    review_vote_cast(user=reviewers[1], item_id=leased_to(item, reviewers[1]).pk, choice=NOT_A_FACE)
    assert FaceImage.objects.get(pk=item.face_id).excluded
    undone = review_vote_undo(user=reviewers[1])
    assert undone.choice == NOT_A_FACE
    item.refresh_from_db()
    face = FaceImage.objects.get(pk=item.face_id)
    assert item.status == ReviewItem.Status.REOPENED and item.settled_label is None
    assert not face.excluded and face.current_label == 3
    assert item.lease_holder == reviewers[1]  # handed back to vote again
    kinds = list(LabelHistory.objects.filter(face=face).values_list("kind", "old_excluded", "new_excluded"))
    assert kinds == [("quorum", False, True), ("undo", True, False)]
    assert list(Vote.objects.filter(item=item).values_list("reviewer__username", flat=True)) == ["reviewer0"]
    # Voting again settles again.
    review_vote_cast(user=reviewers[1], item_id=item.pk, choice=6)
    review_vote_cast(user=reviewers[2], item_id=leased_to(item, reviewers[2]).pk, choice=6)
    assert FaceImage.objects.get(pk=item.face_id).current_label == 6


def test_undo_before_settling_removes_only_the_vote(reviewers):
    item = ReviewItemFactory()
    review_vote_cast(user=reviewers[0], item_id=leased_to(item, reviewers[0]).pk, choice=2)
    review_vote_undo(user=reviewers[0])
    assert not Vote.objects.exists() and not LabelHistory.objects.exists()
    with pytest.raises(ReviewError, match="no vote"):
        review_vote_undo(user=reviewers[0])


def test_undo_of_an_earlier_vote_keeps_a_settlement_that_still_holds(reviewers):
    item = ReviewItemFactory()
    for reviewer in reviewers[:3]:
        if item.status != ReviewItem.Status.SETTLED:
            review_vote_cast(user=reviewer, item_id=leased_to(item, reviewer).pk, choice=5)
        item.refresh_from_db()
    assert item.status == ReviewItem.Status.SETTLED
    review_vote_undo(user=reviewers[0])
    item.refresh_from_db()
    assert item.status == ReviewItem.Status.REOPENED  # only one vote left: no quorum any more
    assert FaceImage.objects.get(pk=item.face_id).current_label == 3


def test_admin_reopen_starts_a_new_round(reviewers, admin_user):
    item = ReviewItemFactory()
    review_vote_cast(user=reviewers[0], item_id=leased_to(item, reviewers[0]).pk, choice=4)
    review_vote_cast(user=reviewers[1], item_id=leased_to(item, reviewers[1]).pk, choice=4)
    review_item_reopen(admin=admin_user, item_id=item.pk)
    item.refresh_from_db()
    assert item.status == ReviewItem.Status.REOPENED and item.round == 2
    assert FaceImage.objects.get(pk=item.face_id).current_label == 4  # stands until the new round settles
    assert review_item_next_for(user=reviewers[0])[0].pk == item.pk  # reviewer0 may vote again
    review_vote_cast(user=reviewers[0], item_id=item.pk, choice=0)
    item.refresh_from_db()
    assert item.status == ReviewItem.Status.REOPENED  # the old round's votes do not count
    review_vote_cast(user=reviewers[2], item_id=leased_to(item, reviewers[2]).pk, choice=0)
    assert FaceImage.objects.get(pk=item.face_id).current_label == 0
    assert list(LabelHistory.objects.values_list("kind", flat=True)) == ["quorum", "reopen", "quorum"]
    with pytest.raises(ReviewError, match="closed round"):
        Vote.objects.filter(item=item, round=2).delete()
        review_vote_undo(user=reviewers[1])


def test_next_item_order_lease_voted_and_skipped(reviewers):
    worst = ReviewItemFactory(priority=0.01)
    middle = ReviewItemFactory(priority=0.2)
    best = ReviewItemFactory(priority=0.5)
    r1, r2 = reviewers[:2]
    assert [i.pk for i in review_item_next_for(user=r1)] == [worst.pk]
    assert [i.pk for i in review_item_next_for(user=r1)] == [worst.pk]  # still held: the same item again
    assert [i.pk for i in review_item_next_for(user=r2, count=3)] == [middle.pk, best.pk]  # worst is leased to r1
    review_vote_cast(user=r1, item_id=worst.pk, choice=1)
    assert [i.pk for i in review_item_next_for(user=r1)] == []  # r2 holds the others; r1 voted on worst
    ReviewItem.objects.update(lease_expires_at=timezone.now())  # leases run out
    assert [i.pk for i in review_item_next_for(user=r1)] == [middle.pk]  # r2's lease on it ran out
    review_item_skip(user=r1, item_id=middle.pk)
    assert Skip.objects.filter(reviewer=r1).count() == 1
    assert [i.pk for i in review_item_next_for(user=r1, count=3)] == [best.pk]
    assert [i.pk for i in review_item_next_for(user=r2, count=3)] == [worst.pk, middle.pk]


def test_leased_item_refuses_another_reviewers_vote(reviewers):
    item = ReviewItemFactory()
    review_item_next_for(user=reviewers[0])
    with pytest.raises(ReviewError, match="no review item") as refused:  # as if it did not exist
        review_vote_cast(user=reviewers[1], item_id=item.pk, choice=1)
    assert refused.value.status == 404


def test_undo_never_takes_over_another_reviewers_live_lease(reviewers):
    item = ReviewItemFactory()
    review_vote_cast(user=reviewers[0], item_id=leased_to(item, reviewers[0]).pk, choice=2)
    leased_to(item, reviewers[1])  # reviewer1 is looking at it now
    with pytest.raises(ReviewError) as refused:
        review_vote_undo(user=reviewers[0])
    assert (refused.value.status, refused.value.code) == (409, "item_leased")
    item.refresh_from_db()
    assert item.lease_holder == reviewers[1]
    assert list(Vote.objects.filter(item=item).values_list("reviewer", "choice")) == [(reviewers[0].pk, 2)]


def test_gold_items_take_their_place_in_the_queue_and_never_settle(reviewers):
    regular = [ReviewItemFactory(priority=p) for p in (0.1, 0.3, 0.5)]
    gold_face = FaceImageFactory()
    run = ScoringRun.objects.create(status=ScoringRun.Status.SUCCEEDED)
    LabelScore.objects.create(run=run, face=gold_face, given_label=3, quality=0.2, suggested_label=4,
                              suggested_probability=0.6, probabilities=[1 / 7] * 7)
    gold = review_gold_set(face_id=gold_face.pk, label=5)
    assert (gold.priority, gold.suggested_label, gold.score.run_id) == (0.2, 4, run.pk)  # ranked by its own score
    taken = review_item_next_for(user=reviewers[0], count=3)
    assert [i.pk for i in taken] == [regular[0].pk, gold.pk, regular[1].pk]
    for reviewer in reviewers[:3]:
        review_vote_cast(user=reviewer, item_id=leased_to(gold, reviewer).pk, choice=5)
    gold.refresh_from_db()
    assert gold.status == ReviewItem.Status.OPEN and FaceImage.objects.get(pk=gold_face.pk).current_label == 3
    # Everyone who voted on the gold item goes on with regular items; reviewer3 meets it at its place.
    assert review_item_next_for(user=reviewers[1])[0].pk == regular[2].pk
    assert [i.pk for i in review_item_next_for(user=reviewers[3], count=3)] == [gold.pk]
