"""Races on PostgreSQL: each thread has its own database connection, and the rows are committed (transaction=True)."""

from __future__ import annotations

import threading
from datetime import timedelta
from types import SimpleNamespace

import numpy as np
import pytest
from django.db import connection, transaction
from django.utils import timezone

from apps.faces.models import FaceImage
from apps.review.models import LabelHistory, ReviewItem, ScoringRun, Vote
from apps.review.scoring import _record
from apps.review.services import ReviewError, review_item_next_for, review_vote_cast
from tests.faces.factories import FaceImageFactory

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
        assert len(ok) == 1 and len(refused) == 1, results  # the late vote finds the item settled:
        # an admin is told so; for reviewer1 the item is no longer theirs, as if it did not exist
        assert "settled" in str(refused[0]) or "no review item" in str(refused[0])
        item.refresh_from_db()
        assert item.status == ReviewItem.Status.SETTLED and item.settled_label == 6
        assert LabelHistory.objects.filter(item=item).count() == 1
        assert Vote.objects.filter(item=item).count() == 2
        assert FaceImage.objects.get(pk=item.face_id).current_label == 6


def test_parallel_next_calls_never_lease_one_reviewer_more_than_the_prefetch(reviewers, settings):
    """Four tabs asking at once: each call sees nothing leased yet unless calls of one reviewer queue up."""
    settings.REVIEW_PREFETCH = 3
    ReviewItemFactory.create_batch(12)
    meeting = threading.Barrier(4, timeout=2)  # holds each call, its leases written, until all four have leased

    def lease_then_meet(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if sql.startswith('UPDATE "review_reviewitem"') and 'SET "lease_holder_id"' in sql:
            try:
                meeting.wait()
            except threading.BrokenBarrierError:  # the others are waiting for this call to finish
                pass
        return result

    def next_items(_):
        with connection.execute_wrapper(lease_then_meet):
            return [item.pk for item in review_item_next_for(user=reviewers[0], count=3)]

    got = _race(4, next_items)
    assert all(isinstance(g, list) for g in got), got
    leased = ReviewItem.objects.filter(lease_holder=reviewers[0], lease_expires_at__gt=timezone.now())
    assert leased.count() == 3
    assert all(set(g) <= set(leased.values_list("pk", flat=True)) for g in got)


def test_a_vote_cast_while_a_scoring_run_retires_untouched_items_is_never_lost(reviewers):
    """The scoring run lists the open items nobody touched and retires them; a vote landing between the listing and
    the delete must either be refused (the item is gone) or keep its item, never succeed and then vanish."""
    run = ScoringRun.objects.create()
    item = ReviewItemFactory()  # open and untouched; the new run does not flag its face, so it is to retire
    ReviewItem.objects.filter(pk=item.pk).update(  # reviewer0's lease just ran out, nobody took it: they may vote
        lease_holder=reviewers[0], lease_expires_at=timezone.now() - timedelta(seconds=1))
    flagged = FaceImageFactory()
    scores = SimpleNamespace(rows=np.array([flagged.pk]), given=np.array([3]), quality=np.array([0.1]),
                             is_issue=np.array([True]), suggested=np.array([5]),
                             suggested_probability=np.array([0.5]), probabilities=np.array([[1 / 7] * 7]),
                             signals=None)
    listed, voted = threading.Event(), threading.Event()

    def pause_after_listing(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if not listed.is_set() and sql.startswith("SELECT") and '"review_reviewitem"' in sql \
                and '"review_vote"' in sql:
            listed.set()
            voted.wait(timeout=2)  # the vote lands here (or waits for the run's row locks)
        return result

    def target(i):
        if i == 0:
            with connection.execute_wrapper(pause_after_listing), transaction.atomic():
                return _record(run, scores)
        assert listed.wait(timeout=10)
        try:
            return review_vote_cast(user=reviewers[0], item_id=item.pk, choice=2)
        finally:
            voted.set()

    recorded, vote = _race(2, target)
    assert not isinstance(recorded, Exception), recorded
    if isinstance(vote, Exception):  # refused: the item was retired first
        assert isinstance(vote, ReviewError) and vote.status == 404, vote
        assert not ReviewItem.objects.filter(pk=item.pk).exists() and not Vote.objects.exists()
    else:  # accepted: it stays, with its item
        assert list(Vote.objects.values_list("pk", "item_id")) == [(vote.pk, item.pk)]
