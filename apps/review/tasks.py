"""Celery tasks of the review app: thin, they take ids and call a service (imported inside the function: services
import these tasks at module level)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings


@shared_task(name="review.score_labels")
def score_labels_task(run_id: int) -> dict:
    """Cross-fit, score and fill the queue for one scoring run (queue ``bulk``).

    No Celery retry: the row is the truth. A duplicate delivery finds the run claimed and does nothing; a run whose
    worker was lost is queued again by the sweeper and resumes from its finished folds.
    """
    from .models import ScoringRun
    from .scoring import ScoringRunNotClaimed, scoring_run_execute

    try:
        run = scoring_run_execute(run_id, from_statuses=(ScoringRun.Status.QUEUED,), release_transient=True)
    except ScoringRunNotClaimed:
        return {"run": run_id, "status": "not claimed"}
    if run.status == ScoringRun.Status.SUCCEEDED and settings.REVIEW_OVERLAY_PRECOMPUTE:
        from apps.core.work import task_send_after_commit

        task_send_after_commit(overlays_precompute_task.name, ())  # a hint: leasing computes what is missing
    return {"run": run.pk, "status": run.status, "scored": run.scored_count, "issues": run.issue_count,
            "items_created": run.items_created, "items_updated": run.items_updated}


@shared_task(name="review.overlays_precompute")
def overlays_precompute_task() -> dict:
    """The review page's prediction and overlays for the head of the queue, ahead of the reviewers (queue ``bulk``,
    after a scoring run). A lost message costs nothing but speed: leasing queues what is missing."""
    from .overlays import review_overlays_precompute

    return review_overlays_precompute(limit=settings.REVIEW_OVERLAY_PRECOMPUTE)
