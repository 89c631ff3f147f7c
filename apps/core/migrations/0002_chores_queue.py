"""Beat sends the platform's chores (the sweeper, the periodic training check) to the ``chores`` queue, which a
worker of its own consumes: behind a backed-up ``interactive`` queue they could wait for minutes, and lost jobs with
them."""

from __future__ import annotations

from django.db import migrations
from django.utils import timezone

CHORES = ("core.sweep_work", "training.periodic_check", "core.health_check")


def _move(apps, queue: str) -> None:
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    if PeriodicTask.objects.filter(task__in=CHORES).exclude(queue=queue).update(queue=queue):
        PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})  # beat reloads


def create(apps, schema_editor):
    _move(apps, "chores")


def remove(apps, schema_editor):
    _move(apps, "interactive")


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0001_sweep_schedule"),
        ("training", "0002_periodic_check"),
    ]

    operations = [migrations.RunPython(create, remove)]
