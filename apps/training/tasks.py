"""Celery tasks of the training app (``apps.core.work``): each names its kind, or the service a beat task runs."""

from __future__ import annotations

from apps.core.work import QUEUE_CHORES, platform_task, work_task

from .execution import TRAINING_RUN
from .services import training_periodic_check

training_run_task = work_task(TRAINING_RUN)


@platform_task("training.periodic_check", queue=QUEUE_CHORES)
def training_periodic_check_task() -> dict:
    """Beat: start a run when enough labels changed since the active version's snapshot."""
    return training_periodic_check()
