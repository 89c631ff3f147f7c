"""Celery tasks of the training app: thin, they take ids and call a service (imported inside the function: services
import these tasks at module level)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="training.run")
def training_run_task(run_id: int) -> dict:
    """Train one queued run (queue ``bulk``). No Celery retry: the row is the truth. Failures are recorded on the run;
    a duplicate delivery finds it claimed and does nothing; a run whose worker was lost is queued again by the
    sweeper and resumes from its last epoch checkpoint."""
    from .execution import training_run_execute

    run = training_run_execute(run_id=run_id)
    return {"run": run.pk, "status": run.status, "model_version": run.model_version_id, "promoted": run.promoted,
            "error": run.error}


@shared_task(name="training.periodic_check")
def training_periodic_check_task() -> dict:
    """Beat: start a run when enough labels changed since the active version's snapshot."""
    from .services import training_periodic_check

    return training_periodic_check()
