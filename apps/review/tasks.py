"""Celery tasks of the review app: thin, they take ids and call a service (imported inside the function: services
import these tasks at module level)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="review.score_labels", acks_late=True)
def score_labels_task(run_id: int) -> dict:
    """Cross-fit, score and fill the queue for one scoring run (routed to the ``gpu`` queue).

    No automatic retry: the run records its failure, and executing it again resumes from the finished folds.
    """
    from .scoring import scoring_run_execute

    run = scoring_run_execute(run_id)
    return {"run": run.pk, "status": run.status, "scored": run.scored_count, "issues": run.issue_count,
            "items_created": run.items_created, "items_updated": run.items_updated}
