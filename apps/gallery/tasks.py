"""Celery tasks of the gallery app (``apps.core.work``)."""

from __future__ import annotations

from apps.core.work import work_task

from .services import FAITHFULNESS_RUN

faithfulness_task = work_task(FAITHFULNESS_RUN)
