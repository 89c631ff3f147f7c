"""Celery tasks of the data map app (``apps.core.work``)."""

from __future__ import annotations

from apps.core.work import work_task

from .services import DATA_MAP

data_map_task = work_task(DATA_MAP)
