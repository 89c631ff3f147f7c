from __future__ import annotations

from celery import shared_task

from .services import health_report


@shared_task(name="core.health_check")
def health_check() -> dict[str, object]:
    return health_report()
