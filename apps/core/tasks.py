"""Celery tasks of the core app: beat's small ones."""

from __future__ import annotations

from .services import health_report
from .work import QUEUE_CHORES, platform_task, work_sweep


@platform_task("core.health_check", queue=QUEUE_CHORES)
def health_check() -> dict[str, object]:
    return health_report()


@platform_task("core.sweep_work", queue=QUEUE_CHORES)
def sweep_work_task() -> dict[str, dict[str, list]]:
    """Beat: send lost messages again and take back jobs whose worker died (``apps.core.work.work_sweep``)."""
    return work_sweep()
