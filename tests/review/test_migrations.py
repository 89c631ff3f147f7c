"""The 0002 backfill: history rows get their round (a reopen row closes its round) and gold votes a first answer."""

from __future__ import annotations

import pytest

from tests.helpers import migrate_to, migrate_to_latest

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE, AFTER = [("review", "0001_initial")], [("review", "0002_blind_rounds_gold_answers")]


@pytest.fixture(autouse=True)
def back_to_the_latest_schema():
    """Later tests need every migration applied again (later ones add columns, e.g. 0003's work-row fields)."""
    yield
    migrate_to_latest()


def test_backfill_rounds_and_gold_answers(reviewers):
    from tests.faces.factories import FaceImageFactory

    faces = [FaceImageFactory(), FaceImageFactory()]
    old = migrate_to(BEFORE)
    try:
        Item, Vote, History = (old.get_model("review", n) for n in ("ReviewItem", "Vote", "LabelHistory"))
        item = Item.objects.create(face_id=faces[0].pk, round=2, status="settled")
        gold = Item.objects.create(face_id=faces[1].pk, is_gold=True, gold_label=5)
        for kind in ("quorum", "reopen", "quorum"):
            History.objects.create(face_id=faces[0].pk, item=item, kind=kind)
        Vote.objects.create(item=gold, reviewer_id=reviewers[0].pk, choice=2)
        Vote.objects.create(item=gold, reviewer_id=reviewers[1].pk, choice=5)
    finally:
        new = migrate_to(AFTER)
    History, Answer = new.get_model("review", "LabelHistory"), new.get_model("review", "GoldAnswer")
    assert list(History.objects.order_by("pk").values_list("kind", "round")) == [
        ("quorum", 1), ("reopen", 1), ("quorum", 2)]
    assert sorted(Answer.objects.values_list("reviewer_id", "choice")) == [(reviewers[0].pk, 2), (reviewers[1].pk, 5)]


def test_gold_set_before_the_training_rule_is_brought_under_it(reviewers):
    """0008: an open gold item on a scored, labelled Training face takes its latest score (served like any item); one
    on any other face (here PublicTest, and an unscored Training face) goes, with its votes. Others are untouched."""
    from apps.faces.models import Split
    from apps.review.models import LabelScore, ReviewItem, ScoringRun, Vote
    from tests.faces.factories import FaceImageFactory
    from tests.review.factories import ReviewItemFactory

    scored, unscored = FaceImageFactory(current_label=3), FaceImageFactory()
    public, regular = FaceImageFactory(split=Split.PUBLIC_TEST), FaceImageFactory()
    run = ScoringRun.objects.create(status=ScoringRun.Status.SUCCEEDED)
    score = LabelScore.objects.create(run=run, face=scored, given_label=3, quality=0.25, suggested_label=4,
                                      suggested_probability=0.6, probabilities=[0.05, 0, 0.05, 0.2, 0.6, 0.05, 0.05])
    kept = ReviewItemFactory(face=scored, is_gold=True, gold_label=4, suggested_label=None,
                             suggested_probability=None, priority=0.9)
    gone = [ReviewItemFactory(face=face, is_gold=True, gold_label=2) for face in (unscored, public)]
    Vote.objects.create(item=gone[1], reviewer=reviewers[0], choice=2)
    other = ReviewItemFactory(face=regular, priority=0.5)
    migrate_to([("review", "0007_vote_undo")])
    migrate_to([("review", "0008_gold_from_scored_training")])
    # Only columns 0008 has: today's model has more (kind, 0015).
    kept.refresh_from_db(fields=["score", "priority", "suggested_label", "suggested_probability"])
    assert (kept.score_id, kept.priority, kept.suggested_label, kept.suggested_probability) == (score.pk, 0.25, 4, 0.6)
    assert not ReviewItem.objects.filter(pk__in=[g.pk for g in gone]).exists()
    assert not Vote.objects.filter(item_id=gone[1].pk).exists()
    assert ReviewItem.objects.filter(pk=other.pk).values_list("priority", flat=True).get() == 0.5
