"""Beat's database schedule gets the sweeper of lost work (every 30 s; admins edit it under Periodic tasks), and the
periodic tasks that were on the old "default" queue move to "interactive"."""

from __future__ import annotations

from django.db import migrations
from django.utils import timezone

TASK_NAME = "core: sweep lost work"


def create(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    every, _ = IntervalSchedule.objects.get_or_create(every=30, period="seconds")
    PeriodicTask.objects.get_or_create(
        name=TASK_NAME,
        defaults={"task": "core.sweep_work", "interval": every, "enabled": True, "queue": "interactive",
                  "description": "Sends queued jobs again when their message was lost, and puts jobs whose worker "
                                 "stopped sending heartbeats back to queued (or failed, after their attempts)."},
    )
    PeriodicTask.objects.filter(queue__in=["default", "gpu"]).update(queue="interactive")
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("training", "0002_periodic_check"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, remove)]
