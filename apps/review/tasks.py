"""Celery tasks of the review app (``apps.core.work``): each names its kind, or the service a hint runs."""

from __future__ import annotations

from django.conf import settings

from apps.core.work import QUEUE_BULK, platform_task, work_task

from .learning import QUEUE_FIT
from .overlays import review_overlays_precompute
from .scoring import OVERLAYS_PRECOMPUTE_TASK, SCORING_RUN

score_labels_task = work_task(SCORING_RUN)
queue_fit_task = work_task(QUEUE_FIT)


@platform_task(OVERLAYS_PRECOMPUTE_TASK, queue=QUEUE_BULK)
def overlays_precompute_task() -> dict:
    """The review page's prediction and overlays for the head of the queue, ahead of the reviewers (after a scoring
    run). A lost message costs nothing but speed: leasing queues what is missing."""
    return review_overlays_precompute(limit=settings.REVIEW_OVERLAY_PRECOMPUTE)
