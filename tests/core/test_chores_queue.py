"""Platform chores (the sweeper, the periodic training check) run on a queue of their own, consumed by a worker that
no user work reaches: a backed-up or stuck interactive worker cannot keep lost jobs from being taken back."""

from __future__ import annotations

import importlib
import os
import signal
import time

import pytest
from django.apps import apps as django_apps
from django_celery_beat.models import PeriodicTask

from apps.core.work import QUEUE_BULK, QUEUE_CHORES, QUEUE_INTERACTIVE, QUEUES, task_queue, task_queues
from ferplatform.celery import app as celery_app
from scripts import run_all
from tests.workers import running_worker

CHORES = ("core.sweep_work", "training.periodic_check", "core.health_check")


def worker_queues() -> dict[str, set[str]]:
    """make run's (and make prod's) workers and the queues each consumes."""
    found = {}
    for name, command in run_all.commands().items():
        if "worker" in command:
            found[name] = set(command[command.index("-Q") + 1].split(","))
    return found


def beat_schedule() -> dict[str, str]:
    """What the migrations put in beat's database schedule: task -> the queue beat sends it to. Run here, since a
    transactional test before this one may have emptied the tables the migrations filled."""
    for app, migration in (("training", "0002_periodic_check"), ("core", "0001_sweep_schedule"),
                           ("core", "0002_chores_queue")):
        importlib.import_module(f"apps.{app}.migrations.{migration}").create(django_apps, None)
    return dict(PeriodicTask.objects.filter(task__in=CHORES).values_list("task", "queue"))


def test_chores_have_a_queue_and_a_worker_of_their_own():
    assert QUEUE_CHORES in QUEUES
    for chore in CHORES:
        assert task_queue(chore) == QUEUE_CHORES, chore
    user_work = {queue for name, queue in task_queues().items() if name not in CHORES}
    assert QUEUE_CHORES not in user_work
    consumers = {name: queues for name, queues in worker_queues().items() if QUEUE_CHORES in queues}
    assert len(consumers) == 1, worker_queues()
    (chores_worker,) = consumers.values()
    assert chores_worker.isdisjoint({QUEUE_INTERACTIVE, QUEUE_BULK}), chores_worker


@pytest.mark.django_db
def test_beat_sends_the_chores_to_their_queue():
    assert beat_schedule() == {"core.sweep_work": QUEUE_CHORES, "training.periodic_check": QUEUE_CHORES}


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_sweeper_runs_while_the_interactive_worker_is_stuck(tmp_path):
    """The interactive worker is frozen (SIGSTOP: as stuck as in a long heatmap batch) with messages waiting behind
    it; beat's chores, sent where beat sends them, are still run by the chores worker as make run starts it."""
    schedule = beat_schedule()
    (chores_queues,) = [queues for queues in worker_queues().values() if QUEUE_CHORES in queues]
    with running_worker(name="h23-interactive", queues=QUEUE_INTERACTIVE, log=tmp_path / "interactive.log",
                        env={}, purge=True) as interactive:
        os.kill(interactive.pid, signal.SIGSTOP)
        try:
            for _ in range(3):
                celery_app.send_task("core.health_check", queue=QUEUE_INTERACTIVE)  # user work piling up
            with running_worker(name="h23-chores", queues=",".join(sorted(chores_queues)),
                                log=tmp_path / "chores.log", env={}, purge=True):
                started = time.monotonic()
                for task, queue in sorted(schedule.items()):
                    result = celery_app.send_task(task, queue=queue)
                    assert result.get(timeout=60) is not None, task
                assert time.monotonic() - started < 60
        finally:
            os.kill(interactive.pid, signal.SIGCONT)
