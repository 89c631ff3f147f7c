"""Through real Celery workers on Redis: the session worker (queues interactive and bulk) trains a run; a worker of
our own is killed with SIGKILL in the middle of a run, which the sweeper then puts back to queued, and which resumes
from its checkpoint."""

from __future__ import annotations

import os
import signal
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from apps.inference.models import ModelVersion
from apps.inference.selectors import model_version_active
from apps.inference.services.registry import model_version_register
from apps.training.execution import run_dir, training_run_execute
from apps.training.models import TrainingRun
from apps.training.services import (
    training_run_start,
    training_runs_sweep_stale,
)
from tests.helpers import wait_until
from tests.workers import running_worker

from .conftest import TINY, run_kwargs, synthetic_faces

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]


def wait_for(predicate, timeout: float, what: str):
    return wait_until(predicate, timeout=timeout, what=what)


def test_the_bulk_queue_worker_trains_a_run(shared_media_root, random_checkpoint, celery_worker_process):
    assert "bulk" in celery_worker_process.args[celery_worker_process.args.index("-Q") + 1].split(",")
    synthetic_faces(test_per_class=0)  # no PublicTest: the gate keeps it inactive, so nothing else is queued
    active = model_version_register(checkpoint_path=random_checkpoint, name="random", activate=True)
    run = training_run_start(**run_kwargs(epochs=2))  # sent to the bulk queue on commit

    def finished():
        run.refresh_from_db()
        return run.is_finished

    wait_for(finished, 180, f"run {run.pk} on the worker")
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert [p["epoch"] for p in run.history] == [1, 2] and run.worker
    assert run.model_version.status == ModelVersion.Status.READY and run.promoted is False
    assert "no PublicTest faces" in run.promotion_reason
    assert model_version_active() == active
    assert (shared_media_root / run.model_version.checkpoint.name).is_file()  # stored by the worker


@pytest.fixture
def killable_worker(django_db_setup, tmp_path):
    """A worker of our own (its own queue, media and training dirs) that the test may kill."""
    queue = f"training-test-{os.getpid()}"
    env = {"MEDIA_ROOT": str(tmp_path / "media"), "TRAINING_DIR": str(tmp_path / "training"),
           "INFERENCE_REFRESH_ON_ACTIVATE": "0", "OMP_NUM_THREADS": "1"}
    with running_worker(name=f"training-{os.getpid()}", queues=queue, log=tmp_path / "worker.log", env=env) as worker:
        yield worker, queue, tmp_path


def test_a_worker_killed_mid_run_is_taken_back_by_the_sweeper_and_resumes(killable_worker, settings,
                                                                            random_checkpoint):
    worker, queue, base = killable_worker
    settings.MEDIA_ROOT = base / "media"
    settings.TRAINING_DIR = base / "training"
    settings.CELERY_TASK_ROUTES = {**settings.CELERY_TASK_ROUTES, "training.run": {"queue": queue}}
    synthetic_faces()
    active = model_version_register(checkpoint_path=random_checkpoint, name="random", activate=True)
    run = training_run_start(trigger="admin", recipe_name="scoring", epochs=60, recipe_overrides=TINY)

    def two_epochs_done():
        run.refresh_from_db()
        return len(run.history) >= 2

    wait_for(two_epochs_done, 180, "two finished epochs on the worker")
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=30)
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.RUNNING  # the dead worker could not say anything
    killed_after = len(run.history)
    assert killed_after < 60

    # Once its heartbeat is older than the timeout, the sweeper (beat) takes it back: queued again, with the reason,
    # and sent again (to the dead worker's queue here); the active model is unchanged.
    assert training_runs_sweep_stale() == []  # the heartbeat is fresh: not lost yet
    later = timezone.now() + timedelta(seconds=settings.WORK_HEARTBEAT_TIMEOUT + 1)
    assert training_runs_sweep_stale(now=later) == [run.pk]
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.QUEUED and "stopped sending heartbeats" in run.error
    assert run.attempts == 1 and run.last_sent_at is not None
    assert model_version_active() == active and ModelVersion.objects.count() == 1
    assert (run_dir(run) / "model.pt.state").is_file()

    # The next attempt resumes from the last epoch checkpoint the worker wrote (executed here, in this process).
    epochs = []
    run = training_run_execute(run_id=run.pk, echo=lambda e: e["kind"] == "epoch" and epochs.append(e["epoch"]))
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert epochs and epochs[0] >= killed_after and epochs[-1] == 60
    assert [p["epoch"] for p in run.history] == list(range(1, 61))
    assert run.attempts == 2 and ModelVersion.objects.count() == 2  # one new version, not two
