"""Celery tasks of the faces app (``apps.core.work``)."""

from __future__ import annotations

from apps.core.work import work_task

from .near_duplicates import NEAR_DUPLICATE_RUN

near_duplicates_task = work_task(NEAR_DUPLICATE_RUN)
