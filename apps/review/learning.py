"""A queue that learns from its reviewers (``ml.queue_model``): every settled item says whether its label was wrong;
once ``REVIEW_LEARN_MIN_SETTLED`` have settled, and again after every ``REVIEW_LEARN_EVERY`` more, a queue fit
(a unit of work, ``apps.core.work``) learns the error rate per (given label, suggestion) pair from them and gives
every open item a new place in the queue. Gold items are open items like the others: they are re-ranked by the same
rule from their own score, so the order still does not tell them apart.

An item's outcome pairs the label it was settled from with the suggestion of the latest score taken before it
settled (a later scoring run scores the corrected label). Settled means by quorum or by an admin; "not a face" counts
as wrong; disputed items have no outcome.
"""

from __future__ import annotations

import logging

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from apps.core.models import WorkStatus
from apps.core.work import QUEUE_INTERACTIVE, WorkKind, WorkProgress, work_send, work_still_mine

from .models import LabelScore, QueueFit, ReviewItem

logger = logging.getLogger(__name__)

OPEN = (ReviewItem.Status.OPEN, ReviewItem.Status.REOPENED)


def _settled_with_score():
    """Settled regular items annotated with the given label and suggestion of the latest score before they settled
    (items that had none left out)."""
    before = LabelScore.objects.filter(face=OuterRef("face"), run__created_at__lte=OuterRef("settled_at")).order_by(
        "-run__created_at", "-pk")
    return (ReviewItem.objects.filter(status=ReviewItem.Status.SETTLED, is_gold=False, settled_at__isnull=False)
            .annotate(given=Subquery(before.values("given_label")[:1]),
                      suggested=Subquery(before.values("suggested_label")[:1]))
            .exclude(given=None))


def queue_outcomes() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(given, suggested, wrong) of every settled regular item that had a score when it settled."""
    rows = _settled_with_score().values_list("given", "suggested", "settled_label")
    data = np.array(list(rows), dtype=np.int64).reshape(-1, 3)
    return data[:, 0], data[:, 1], data[:, 2] != data[:, 0]


def reviewer_model_current():
    """The latest fitted reviewer model (``ml.queue_model.ReviewerModel``), or None before the first fit."""
    from ml.queue_model import ReviewerModel

    fit = QueueFit.objects.filter(status=WorkStatus.SUCCEEDED).exclude(model={}).order_by("-finished_at", "-pk").first()
    return ReviewerModel.from_dict(fit.model) if fit else None


def review_queue_rerank(*, model=None, item_ids: list[int] | None = None) -> int:
    """Give open items (``item_ids``, or all) their place by the reviewer model: their rank within their score's run,
    moved by their pair's error rate. Without a fitted model nothing changes (a run's order is its quality). Returns
    how many items were re-ranked."""
    from ml.queue_model import rerank

    model = model or reviewer_model_current()
    if model is None:
        return 0
    # Only label issues: an outlier's or a duplicate conflict's place comes from its own score, not label quality.
    items = ReviewItem.objects.filter(status__in=OPEN, score__isnull=False, kind=ReviewItem.Kind.LABEL_ISSUE)
    if item_ids is not None:
        items = items.filter(pk__in=item_ids)
    rows = list(items.values_list("pk", "score__run_id", "score__quality", "score__given_label",
                                  "score__suggested_label"))
    if not rows:
        return 0
    share = np.empty(len(rows))
    by_run: dict[int, np.ndarray] = {}
    for i, (_, run_id, quality, _, _) in enumerate(rows):
        if run_id not in by_run:
            by_run[run_id] = np.sort(np.array(LabelScore.objects.filter(run_id=run_id).values_list("quality",
                                                                                                     flat=True)))
        ranked = by_run[run_id]
        below = np.searchsorted(ranked, quality, side="left")
        ties = np.searchsorted(ranked, quality, side="right") - below
        share[i] = (below + (ties - 1) / 2) / max(len(ranked) - 1, 1)
    priorities = rerank(np.clip(share, 0, 1), [r[3] for r in rows], [r[4] for r in rows], model)
    updated = [ReviewItem(pk=r[0], priority=float(p)) for r, p in zip(rows, priorities, strict=True)]
    ReviewItem.objects.bulk_update(updated, ["priority"], batch_size=2000)
    return len(updated)


def queue_fit_due() -> bool:
    """Enough new outcomes since the last fit, and no fit waiting or running."""
    if QueueFit.objects.filter(status__in=(WorkStatus.QUEUED, WorkStatus.RUNNING)).exists():
        return False
    settled = _settled_with_score().count()  # counted in the database: this runs after every settlement
    last = (QueueFit.objects.filter(status=WorkStatus.SUCCEEDED).order_by("-finished_at", "-pk")
            .values_list("settled", flat=True).first())
    if last is None:
        return settled >= settings.REVIEW_LEARN_MIN_SETTLED
    return settled - last >= settings.REVIEW_LEARN_EVERY


def queue_fit_enqueue(*, created_by=None) -> QueueFit:
    with transaction.atomic():
        fit = QueueFit.objects.create(created_by=created_by)
        work_send(QUEUE_FIT, fit.pk)
    return fit


def queue_fit_when_due() -> QueueFit | None:
    """Called once an item settles (after its transaction commits): a fit when one is due. A hint: a failure is
    logged, never raised into the vote that triggered it."""
    try:
        return queue_fit_enqueue() if queue_fit_due() else None
    except Exception:  # noqa: BLE001 - the vote is stored; the next settlement tries again
        logger.warning("could not check whether a queue fit is due", exc_info=True)
        return None


def queue_fit_work(fit: QueueFit, progress: WorkProgress) -> None:
    from ml.queue_model import fit_reviewer_model

    given, suggested, wrong = queue_outcomes()
    if not len(wrong):
        raise QueueFitError("no settled item with a score to learn from yet")
    model = fit_reviewer_model(given, suggested, wrong, shrink=settings.REVIEW_LEARN_SHRINK)
    progress({"kind": "fit", "settled": len(wrong), "wrong": int(wrong.sum())})
    with transaction.atomic():
        work_still_mine(QUEUE_FIT, fit.pk)
        reranked = review_queue_rerank(model=model)
        QueueFit.objects.filter(pk=fit.pk, status=WorkStatus.RUNNING).update(
            settled=len(wrong), wrong=int(wrong.sum()), model=model.as_dict(), reranked=reranked,
            status=WorkStatus.SUCCEEDED, finished_at=timezone.now(), error="")


class QueueFitError(RuntimeError):
    """Nothing to learn from."""


# A fit takes well under a second for thousands of settled items: the interactive queue, not behind an hour-long
# scoring run on the bulk one.
QUEUE_FIT = WorkKind(name="queue_fit", label="queue fits", model=QueueFit, task="review.queue_fit",
                     queue=QUEUE_INTERACTIVE, work=queue_fit_work, max_attempts=2)
