"""A queue that learns from its reviewers: settled items teach the error rate of each (label, suggestion) pair; a
queue fit, due after enough settlements, re-ranks every open item (gold included, by the same rule)."""

from __future__ import annotations

import pytest

from apps.core import work
from apps.core.models import WorkStatus
from apps.core.work import work_run
from apps.review.learning import QUEUE_FIT, queue_outcomes, review_queue_rerank
from apps.review.models import LabelScore, QueueFit, ReviewItem, ScoringRun
from apps.review.services import review_item_settle_admin
from apps.review.tasks import queue_fit_task
from tests.faces.factories import FaceImageFactory

pytestmark = pytest.mark.django_db

HAPPY, SAD, SURPRISE, FEAR = 3, 4, 5, 2


def _scored(run: ScoringRun, label: int, suggested: int, quality: float, **item) -> ReviewItem:
    face = FaceImageFactory(original_label=label, current_label=label)
    score = LabelScore.objects.create(run=run, face=face, given_label=label, quality=quality, is_issue=True,
                                      suggested_label=suggested, suggested_probability=0.6,
                                      probabilities=[1 / 7] * 7)
    return ReviewItem.objects.create(face=face, score=score, priority=quality, suggested_label=suggested,
                                     suggested_probability=0.6, **item)


@pytest.fixture
def queue(settings, monkeypatch):
    """12 items at the top of a run: 6 happy->surprise and 6 sad->fear; three open ones further down, the worst
    ranked of them a gold item. Nothing is sent to a broker (``sent`` records it)."""
    settings.REVIEW_LEARN_MIN_SETTLED, settings.REVIEW_LEARN_EVERY, settings.REVIEW_LEARN_SHRINK = 12, 5, 2
    sent: list[tuple[str, int]] = []
    monkeypatch.setattr(work, "work_send_now", lambda kind, pk, **kw: sent.append((str(kind.name), pk)) or True)
    run = ScoringRun.objects.create(status=WorkStatus.SUCCEEDED)
    top = [_scored(run, HAPPY, SURPRISE, 0.01 * i) for i in range(1, 7)]
    top += [_scored(run, SAD, FEAR, 0.01 * i + 0.005) for i in range(1, 7)]
    sad = _scored(run, SAD, FEAR, 0.3)
    happy = _scored(run, HAPPY, SURPRISE, 0.5)
    gold = _scored(run, HAPPY, SURPRISE, 0.6, is_gold=True, gold_label=HAPPY)
    return {"run": run, "top": top, "open": (sad, happy, gold), "sent": sent}


def _settle_top(queue, admin, capture) -> None:
    """Reviewers found every happy->surprise label wrong and every sad->fear label right."""
    for item in queue["top"]:
        choice = SURPRISE if item.score.given_label == HAPPY else SAD
        with capture(execute=True):
            review_item_settle_admin(admin=admin, item_id=item.pk, choice=choice)


def _served_order(items) -> list[int]:
    ids = [i.pk for i in items]
    return list(ReviewItem.objects.filter(pk__in=ids).order_by("priority", "pk").values_list("pk", flat=True))


def test_settled_items_trigger_a_fit_that_brings_the_pair_found_wrong_forward(queue, admin_user,
                                                                              django_capture_on_commit_callbacks):
    sad, happy, gold = queue["open"]
    assert _served_order(queue["open"]) == [sad.pk, happy.pk, gold.pk]  # by quality alone
    _settle_top(queue, admin_user, django_capture_on_commit_callbacks)
    fit = QueueFit.objects.get()
    assert queue["sent"] == [("queue_fit", fit.pk)] and fit.status == WorkStatus.QUEUED
    fit = work_run(QUEUE_FIT, fit.pk)
    assert fit.status == WorkStatus.SUCCEEDED, fit.error
    assert (fit.settled, fit.wrong, fit.reranked) == (12, 6, 3)
    assert fit.model["counts"][HAPPY][SURPRISE] == 6 and fit.model["wrong"][SAD][FEAR] == 0
    # Reviewers found happy->surprise wrong every time: both such items, the gold one too, now come before sad->fear.
    assert _served_order(queue["open"]) == [happy.pk, gold.pk, sad.pk]


def test_a_fit_waits_for_enough_settled_items_and_then_for_enough_new_ones(queue, admin_user, settings,
                                                                           django_capture_on_commit_callbacks):
    settings.REVIEW_LEARN_MIN_SETTLED = 13
    _settle_top(queue, admin_user, django_capture_on_commit_callbacks)
    assert not QueueFit.objects.exists() and queue["sent"] == []
    settings.REVIEW_LEARN_MIN_SETTLED = 12
    with django_capture_on_commit_callbacks(execute=True):
        review_item_settle_admin(admin=admin_user, item_id=queue["open"][0].pk, choice=SAD)
    first = QueueFit.objects.get()
    work_run(QUEUE_FIT, first.pk)
    with django_capture_on_commit_callbacks(execute=True):  # one more settled item: not yet REVIEW_LEARN_EVERY (5)
        review_item_settle_admin(admin=admin_user, item_id=queue["open"][1].pk, choice=SURPRISE)
    assert QueueFit.objects.count() == 1


def test_an_outcome_is_judged_on_the_score_before_the_item_settled(queue, admin_user,
                                                                    django_capture_on_commit_callbacks):
    """A later scoring run scores the corrected label (surprise): the outcome still says happy was wrong."""
    _settle_top(queue, admin_user, django_capture_on_commit_callbacks)
    later = ScoringRun.objects.create(status=WorkStatus.SUCCEEDED)
    for item in queue["top"]:
        item.refresh_from_db()
        LabelScore.objects.create(run=later, face=item.face, given_label=item.face.current_label, quality=0.9,
                                  suggested_label=item.face.current_label, suggested_probability=0.9,
                                  probabilities=[1 / 7] * 7)
    given, suggested, wrong = queue_outcomes()
    assert len(wrong) == 12 and int(wrong.sum()) == 6
    assert sorted(set(zip(given.tolist(), suggested.tolist(), strict=True))) == [(HAPPY, SURPRISE), (SAD, FEAR)]


def test_without_a_fit_nothing_is_re_ranked(queue):
    assert review_queue_rerank() == 0
    assert _served_order(queue["open"]) == [i.pk for i in queue["open"]]


def test_a_fit_re_ranks_label_issues_only(queue, admin_user, django_capture_on_commit_callbacks):
    """An outlier keeps its own place: label quality says nothing about a face that may not be a face."""
    sad, happy, _ = queue["open"]
    ReviewItem.objects.filter(pk=happy.pk).update(kind=ReviewItem.Kind.OUTLIER, priority=0.9)
    _settle_top(queue, admin_user, django_capture_on_commit_callbacks)
    fit = work_run(QUEUE_FIT, QueueFit.objects.get().pk)
    assert fit.reranked == 2
    assert ReviewItem.objects.get(pk=happy.pk).priority == 0.9


def test_a_fit_with_nothing_settled_fails_with_the_reason(queue):
    fit = QueueFit.objects.create()
    fit = work_run(QUEUE_FIT, fit.pk)
    assert fit.status == WorkStatus.FAILED and "no settled item" in fit.error


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_queue_fit_through_a_real_worker(review_worker, admin_user, settings, monkeypatch):
    queue_name, _ = review_worker
    settings.REVIEW_LEARN_MIN_SETTLED = 10_000  # this test queues the fit itself
    run = ScoringRun.objects.create(status=WorkStatus.SUCCEEDED)
    items = [_scored(run, HAPPY, SURPRISE, 0.01 * i) for i in range(1, 5)] + [_scored(run, SAD, FEAR, 0.5)]
    for item in items[:4]:
        review_item_settle_admin(admin=admin_user, item_id=item.pk, choice=SURPRISE)
    fit = QueueFit.objects.create()
    result = queue_fit_task.apply_async((fit.pk,), queue=queue_name).get(timeout=120)
    assert result["status"] == "succeeded", result
    fit.refresh_from_db()
    assert (fit.settled, fit.wrong, fit.reranked) == (4, 4, 1)
