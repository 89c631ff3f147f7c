"""Celery tasks of the training app: thin, they take ids and call a service (imported inside the function: services
import these tasks at module level)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="training.run", acks_late=True)
def training_run_task(run_id: int) -> dict:
    """Train one queued run (queue ``gpu``). No automatic retry: failures are recorded on the run, and an admin's
    retry resumes it from its last epoch checkpoint. A redelivered message finds the run no longer queued."""
    from .execution import training_run_execute

    run = training_run_execute(run_id=run_id)
    return {"run": run.pk, "status": run.status, "model_version": run.model_version_id, "promoted": run.promoted,
            "error": run.error}


@shared_task(name="training.periodic_check")
def training_periodic_check_task() -> dict:
    """Beat: sweep dead runs, and start a run when enough labels changed since the active version's snapshot."""
    from .services import training_periodic_check

    return training_periodic_check()
