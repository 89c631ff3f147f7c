"""Celery tasks of the review app: thin, they take ids and call a service (imported inside the function: services
import these tasks at module level)."""

from __future__ import annotations

from celery import shared_task


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
    return {"run": run.pk, "status": run.status, "scored": run.scored_count, "issues": run.issue_count,
            "items_created": run.items_created, "items_updated": run.items_updated}
