"""Celery app: queues ``default`` and ``gpu``; beat reads its schedule from the database (django-celery-beat)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ferplatform.settings.local")

app = Celery("ferplatform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
