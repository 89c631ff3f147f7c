"""Races on PostgreSQL: each thread has its own database connection, and the rows are committed (transaction=True)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.utils import timezone

from apps.faces.models import FaceImage
from apps.review.models import LabelHistory, ReviewItem, Vote
from apps.review.services import ReviewError, review_item_next_for, review_vote_cast

from .factories import ReviewItemFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _race(workers: int, target) -> list:
    """Run ``target(i)`` in ``workers`` threads released together; return results or exceptions, in order."""
    barrier = threading.Barrier(workers)
    results: list = [None] * workers

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = target(i)
        except Exception as exc:  # noqa: BLE001 - collected for the assertions
            results[i] = exc
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


def test_two_reviewers_racing_get_different_items(reviewers):
    items = ReviewItemFactory.create_batch(4)
    for _ in range(5):  # several rounds, so the race really happens
        ReviewItem.objects.update(lease_holder=None, lease_expires_at=None)
        got = _race(2, lambda i: [item.pk for item in review_item_next_for(user=reviewers[i], count=1)])
        assert all(isinstance(g, list) and len(g) == 1 for g in got), got
        assert got[0] != got[1]
        assert {got[0][0], got[1][0]} <= {i.pk for i in items}
        holders = dict(ReviewItem.objects.filter(lease_holder__isnull=False).values_list("pk", "lease_holder"))
        assert holders == {got[0][0]: reviewers[0].pk, got[1][0]: reviewers[1].pk}


def test_many_reviewers_racing_never_share_an_item(reviewers):
    ReviewItemFactory.create_batch(8)
    got = _race(4, lambda i: [item.pk for item in review_item_next_for(user=reviewers[i], count=2)])
    flat = [pk for g in got for pk in g]
    assert len(flat) == 8 and len(set(flat)) == 8


def test_two_votes_at_the_same_moment_on_the_last_slot_settle_once(reviewers, admin_user):
    voters = [reviewers[1], admin_user]
    for _ in range(3):
        item = ReviewItemFactory(face__original_label=3)
        assert [i.pk for i in review_item_next_for(user=reviewers[0])] == [item.pk]
        review_vote_cast(user=reviewers[0], item_id=item.pk, choice=6)  # one vote short of the quorum
        # Only a lease holder or an admin may vote: reviewer1's lease has just run out (nobody took the item since)
        # and an admin votes at the same moment.
        assert [i.pk for i in review_item_next_for(user=reviewers[1])] == [item.pk]
        ReviewItem.objects.filter(pk=item.pk).update(lease_expires_at=timezone.now())
        results = _race(2, lambda i, item=item: review_vote_cast(user=voters[i], item_id=item.pk, choice=6))
        ok = [r for r in results if not isinstance(r, Exception)]
        refused = [r for r in results if isinstance(r, ReviewError)]
        assert len(ok) == 1 and len(refused) == 1, results  # the late vote finds the item settled
        assert "settled" in str(refused[0])
        item.refresh_from_db()
        assert item.status == ReviewItem.Status.SETTLED and item.settled_label == 6
        assert LabelHistory.objects.filter(item=item).count() == 1
        assert Vote.objects.filter(item=item).count() == 2
        assert FaceImage.objects.get(pk=item.face_id).current_label == 6
