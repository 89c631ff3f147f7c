"""The periodic check (threshold, schedule entry in the database) and the sweeper for runs whose worker died."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from apps.faces.models import FaceImage
from apps.inference.selectors import model_version_active
from apps.training.execution import training_run_execute
from apps.training.models import TrainingRun, TrainingSettings
from apps.training.services import training_run_start, training_runs_sweep_stale
from apps.training.snapshot import labels_changed_since
from apps.training.tasks import training_periodic_check_task

from .conftest import run_kwargs

pytestmark = pytest.mark.django_db


def relabel(count: int) -> None:
    for face in FaceImage.objects.filter(split="Training").order_by("pk")[:count]:
        face.current_label = (face.current_label + 1) % 7
        face.save(update_fields=["current_label"])


def test_the_schedule_entry_is_in_the_database():
    task = PeriodicTask.objects.get(name="training: periodic check")
    assert task.task == "training.periodic_check" and task.enabled
    assert task.interval.every == 30 and task.interval.period == "minutes"
    assert TrainingSettings.objects.get(pk=1).min_changed == 200


def test_the_periodic_check_starts_a_run_only_past_the_threshold(faces, settings, django_capture_on_commit_callbacks):
    TrainingSettings.objects.update_or_create(pk=1, defaults={"auto_min_changed": 5, "auto_recipe": "scoring",
                                                              "auto_epochs": 1})
    relabel(4)
    result = training_periodic_check_task()
    assert result["changed"] == 4 and result["started"] is None and "fewer than 5" in result["skipped"]
    assert not TrainingRun.objects.exists()

    relabel(5)  # the first four flip again, plus one more
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = training_periodic_check_task()
    assert result["changed"] == 5 and result["started"]
    run = TrainingRun.objects.get()
    assert run.trigger == TrainingRun.Trigger.SCHEDULE and run.recipe_name == "scoring" and run.epochs == 1
    assert len(callbacks) == 1  # training.run is queued after commit

    # While it is queued, the check does not start another.
    assert "is queued" in training_periodic_check_task()["skipped"]


def test_the_threshold_defaults_to_the_setting_and_counts_against_the_active_snapshot(faces, settings):
    settings.TRAINING_AUTO_MIN_CHANGED = 3
    run = training_run_execute(run_id=training_run_start(**run_kwargs(epochs=1)).pk)
    assert model_version_active() == run.model_version
    assert labels_changed_since(run.model_version) == 0
    relabel(2)
    assert labels_changed_since(run.model_version) == 2
    assert training_periodic_check_task()["started"] is None
    FaceImage.objects.filter(pk=FaceImage.objects.filter(split="Training").last().pk).update(excluded=True)
    assert labels_changed_since(run.model_version) == 3  # "not a face" leaves the snapshot
    assert training_periodic_check_task()["started"]


def test_the_check_can_be_disabled(faces):
    TrainingSettings.objects.update_or_create(pk=1, defaults={"auto_min_changed": 1, "auto_enabled": False})
    relabel(3)
    assert "disabled" in training_periodic_check_task()["skipped"]
    assert not TrainingRun.objects.exists()


def test_a_running_run_without_heartbeat_is_queued_again_then_failed_after_its_attempts(faces, random_active_version,
                                                                                       settings):
    run = training_run_start(**run_kwargs())
    long_ago = timezone.now() - timedelta(seconds=settings.WORK_HEARTBEAT_TIMEOUT + 60)
    TrainingRun.objects.filter(pk=run.pk).update(status=TrainingRun.Status.RUNNING, started_at=long_ago,
                                                 heartbeat_at=long_ago, worker="gpu-1:4242", attempts=1,
                                                 progress=[{"epoch": 1}, {"epoch": 2}])
    fresh = TrainingRun.objects.create(trigger="api", recipe_name="scoring", arch="fer_vgg", epochs=1)
    TrainingRun.objects.filter(pk=fresh.pk).update(status=TrainingRun.Status.CANCELLED)

    result = training_periodic_check_task()
    assert result["swept"] == [run.pk]
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.QUEUED and not run.finished_at  # resumes from its epoch checkpoint
    assert "stopped sending heartbeats" in run.error and "attempt 1 of 3 ended" in run.error
    assert training_runs_sweep_stale() == []

    # Lost on every attempt: failed with the reason once its attempts are spent.
    TrainingRun.objects.filter(pk=run.pk).update(status=TrainingRun.Status.RUNNING, heartbeat_at=long_ago, attempts=3)
    assert training_runs_sweep_stale() == [run.pk]
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.FAILED and run.finished_at and "gave up after 3 attempt(s)" in run.error
    assert model_version_active() == random_active_version


def test_a_run_with_a_recent_heartbeat_is_not_swept(faces):
    run = training_run_start(**run_kwargs())
    TrainingRun.objects.filter(pk=run.pk).update(status=TrainingRun.Status.RUNNING, heartbeat_at=timezone.now())
    assert training_runs_sweep_stale() == []
    assert TrainingRun.objects.get(pk=run.pk).status == TrainingRun.Status.RUNNING
