"""Celery tasks (queue ``bulk``): thin wrappers over the gallery's services (imported inside the function)."""

from __future__ import annotations

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="gallery.faithfulness")
def faithfulness_task(run_id: int) -> dict:
    """Measure one faithfulness run. A duplicate delivery finds it claimed and does nothing; a lost worker's run is
    queued again by the sweeper (the scores are replaced, never duplicated)."""
    from .services import faithfulness_run_execute, faithfulness_run_fail

    try:
        run = faithfulness_run_execute(run_id=run_id)
    except Exception as exc:
        logger.exception("faithfulness run %s failed", run_id)
        faithfulness_run_fail(run_id=run_id, error=f"{type(exc).__name__}: {exc}")
        raise
    return {"run": run_id, "status": run.status if run else "not claimed"}
