"""The periodic check in beat's database schedule (every 30 minutes; admins edit it under Periodic tasks), and the
one TrainingSettings row (the threshold, edited in the admin)."""

from __future__ import annotations

from django.db import migrations
from django.utils import timezone

TASK_NAME = "training: periodic check"


def create(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    TrainingSettings = apps.get_model("training", "TrainingSettings")
    TrainingSettings.objects.get_or_create(pk=1)
    every, _ = IntervalSchedule.objects.get_or_create(every=30, period="minutes")
    _, created = PeriodicTask.objects.get_or_create(
        name=TASK_NAME,
        defaults={"task": "training.periodic_check", "interval": every, "enabled": True, "queue": "default",
                  "description": "Sweeps dead training runs, and starts a run when at least N labels changed since "
                                 "the active version's snapshot (N: Training settings in this admin)."},
    )
    if created:  # beat reloads its schedule when this changes
        PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("training", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, remove)]
