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
