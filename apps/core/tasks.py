"""Celery tasks of the core app (services are imported inside the function, as in every app)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="core.health_check")
def health_check() -> dict[str, object]:
    from .services import health_report

    return health_report()


@shared_task(name="core.sweep_work")
def sweep_work_task() -> dict[str, dict[str, list]]:
    """Beat: send lost messages again and take back jobs whose worker died (``apps.core.work.work_sweep``)."""
    from .work import work_sweep

    return work_sweep()
