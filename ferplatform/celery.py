"""Celery app: queues ``interactive`` and ``bulk`` (``apps.core.work``); beat reads its schedule from the database
(django-celery-beat)."""

from __future__ import annotations

from celery import Celery

from .startup import settings_or_exit

settings_or_exit()  # production settings unless DJANGO_SETTINGS_MODULE says otherwise

app = Celery("ferplatform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
