"""Units of work (apps/core/work.py) on the real PostgreSQL test database and the real Redis broker: sends happen
after the commit, claims are exclusive, the sweeper re-sends lost messages and takes back lost workers, and gives up
after the kind's attempts with the reason."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest
import redis
from django.conf import settings as django_settings
from django.db import transaction
from django.utils import timezone

from apps.core.broker import queue_lengths, queue_messages
from apps.core.work import (
    task_queue,
    work_cancel,
    work_claim,
    work_heartbeat,
    work_kind,
    work_kinds,
    work_release,
    work_run,
    work_sweep,
)
from apps.inference.models import InferenceJob, PredictionChunk, PredictionFailure
from apps.inference.services.chunks import PREDICTION_CHUNK, prediction_chunks_create
from apps.inference.services.jobs import SPLIT_JOB
from tests.faces.factories import DatasetFactory, FaceImageFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def own_queues(settings):
    """Route the chunk and split tasks to queues of this test alone (no worker consumes them), emptied around it."""
    suffix = f"work-test-{os.getpid()}"
    queues = {"inference.predict_chunk": f"{suffix}-chunks", "inference.predict_split": f"{suffix}-splits"}
    settings.CELERY_TASK_ROUTES = {**settings.CELERY_TASK_ROUTES,
                                   **{task: {"queue": queue} for task, queue in queues.items()}}
    client = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    client.delete(*queues.values())
    yield queues
    client.delete(*queues.values())


def waiting(queue: str) -> list[tuple]:
    return [m.args for m in queue_messages((queue,))]


def test_every_kind_is_declared_once_with_its_task_and_queue():
    from ferplatform.celery import app

    kinds = {k.name: k.queue for k in work_kinds()}
    assert kinds == {"prediction_chunk": "interactive", "split_job": "bulk", "scoring_run": "bulk",
                     "training_run": "bulk", "faithfulness_run": "bulk", "queue_fit": "interactive",
                     "near_duplicate_run": "bulk", "data_map": "bulk"}
    app.loader.import_default_modules()
    for kind in work_kinds():
        task = app.tasks[kind.task]  # made from the kind by work_task: its name and queue come from there
        assert (task_queue(kind.task), task.__name__) == (kind.queue, f"{kind.name}_task")
        assert kind.routed_queue == kind.queue and not django_settings.CELERY_TASK_ROUTES  # overrides only


def test_a_chunk_is_sent_only_after_its_transaction_commits(own_queues):
    face = FaceImageFactory()
    with transaction.atomic():
        (chunk,) = prediction_chunks_create(face_ids=[face.pk])
        assert waiting(own_queues["inference.predict_chunk"]) == []
    assert waiting(own_queues["inference.predict_chunk"]) == [(chunk.pk,)]
    chunk.refresh_from_db()
    assert chunk.status == "queued" and chunk.last_sent_at is not None and chunk.attempts == 0

    with pytest.raises(RuntimeError), transaction.atomic():
        prediction_chunks_create(face_ids=[face.pk])
        raise RuntimeError("rolled back")
    assert PredictionChunk.objects.count() == 1 and queue_lengths((own_queues["inference.predict_chunk"],)) == {
        own_queues["inference.predict_chunk"]: 1}


def test_only_one_delivery_claims_a_row():
    face = FaceImageFactory()
    chunk = PredictionChunk.objects.create(face_ids=[face.pk], methods=[])
    assert work_claim(PREDICTION_CHUNK, chunk.pk) is True
    assert work_claim(PREDICTION_CHUNK, chunk.pk) is False
    chunk.refresh_from_db()
    assert (chunk.status, chunk.attempts) == ("running", 1) and chunk.heartbeat_at is not None


def test_the_sweeper_resends_a_row_whose_message_was_lost_and_only_that_one(own_queues, settings):
    settings.WORK_RESEND_AFTER = 60
    queue = own_queues["inference.predict_chunk"]
    face = FaceImageFactory()
    lost, waiting_row, fresh = (PredictionChunk.objects.create(face_ids=[face.pk]) for _ in range(3))
    long_ago = timezone.now() - timedelta(minutes=5)
    PredictionChunk.objects.filter(pk__in=[lost.pk, waiting_row.pk]).update(created_at=long_ago)
    PredictionChunk.objects.filter(pk=waiting_row.pk).update(last_sent_at=long_ago)
    from ferplatform.celery import app

    app.tasks["inference.predict_chunk"].apply_async((waiting_row.pk,), queue=queue)  # still in the broker

    report = work_sweep()["prediction_chunk"]
    assert report == {"resent": [lost.pk], "requeued": [], "failed": []}  # fresh: too young; waiting_row: queued
    assert sorted(waiting(queue)) == sorted([(waiting_row.pk,), (lost.pk,)])
    lost.refresh_from_db()
    assert lost.last_sent_at is not None and lost.status == "queued"
    assert work_sweep()["prediction_chunk"]["resent"] == []  # now its message waits too


def test_a_row_whose_worker_stopped_beating_is_queued_again_then_failed_after_its_attempts(own_queues, settings):
    settings.WORK_HEARTBEAT_TIMEOUT = 60
    upload_face = FaceImageFactory()
    chunk = PredictionChunk.objects.create(face_ids=[upload_face.pk], methods=["gradcam"])
    assert work_claim(PREDICTION_CHUNK, chunk.pk)
    assert work_sweep()["prediction_chunk"]["requeued"] == []  # beating recently: a slow job, not a lost one

    later = timezone.now() + timedelta(seconds=61)
    assert work_sweep(now=later)["prediction_chunk"]["requeued"] == [chunk.pk]
    chunk.refresh_from_db()
    assert chunk.status == "queued" and "stopped sending heartbeats" in chunk.error
    assert waiting(own_queues["inference.predict_chunk"]) == [(chunk.pk,)]  # sent again

    for attempt in (2, 3):
        assert work_claim(PREDICTION_CHUNK, chunk.pk)
        later = timezone.now() + timedelta(seconds=61)
        outcome = work_sweep(now=later)["prediction_chunk"]
        assert outcome[("requeued" if attempt < 3 else "failed")] == [chunk.pk]
    chunk.refresh_from_db()
    assert (chunk.status, chunk.attempts) == ("failed", 3) and "gave up after 3 attempt(s)" in chunk.error
    # The kind's hook told the faces: pages that wait on them show the failure.
    assert PredictionFailure.objects.get(face=upload_face).error.startswith("gave up after 3 attempt(s)")


def test_a_transient_error_releases_the_row_for_another_attempt(own_queues):
    job = InferenceJob.objects.create(dataset=DatasetFactory(), split="PublicTest", methods=[])
    assert work_claim(SPLIT_JOB, job.pk)
    assert work_release(SPLIT_JOB, job.pk, "OperationalError: server closed the connection") == "queued"
    job.refresh_from_db()
    assert job.status == "queued" and "attempt 1 of 3 ended" in job.error
    assert waiting(own_queues["inference.predict_split"]) == [(job.pk,)]
    assert work_release(SPLIT_JOB, job.pk, "again") == ""  # not running: nothing to release


def test_the_heartbeat_thread_keeps_a_long_job_alive(settings):
    job = InferenceJob.objects.create(dataset=DatasetFactory(), split="PublicTest", methods=[])
    assert work_claim(SPLIT_JOB, job.pk)
    InferenceJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    with work_heartbeat(SPLIT_JOB, job.pk, every=0.2):
        time.sleep(1.0)
    job.refresh_from_db()
    assert timezone.now() - job.heartbeat_at < timedelta(seconds=5)
    assert work_kind("split_job") is SPLIT_JOB


def test_a_process_that_never_imported_a_task_module_still_sends_its_rows(own_queues):
    """A web process imports only some tasks.py modules; sending a training run from one must still work."""
    import subprocess
    import sys

    from django.db import connection

    db = connection.settings_dict
    url = f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "ferplatform.settings.test", "DATABASE_URL": url,
           "REDIS_URL": django_settings.CELERY_BROKER_URL}
    script = ("import django; django.setup()\n"
              "from ferplatform.celery import app\n"
              "assert 'training.run' not in app.tasks, 'imported already: the test proves nothing'\n"
              "from django.conf import settings\n"
              f"settings.CELERY_TASK_ROUTES['training.run'] = {{'queue': {own_queues['inference.predict_split']!r}}}\n"
              "from apps.core.work import work_send_now\n"
              "print(work_send_now('training_run', 987654))\n")
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120,
                            cwd=django_settings.BASE_DIR)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "True"
    assert waiting(own_queues["inference.predict_split"]) == [(987654,)]


def test_the_runner_records_every_outcome_the_same_way(active_version, django_capture_on_commit_callbacks, own_queues):
    """One runner for every kind: success, a transient error (queued again and sent), a final failure with the
    reason, a cancel before the claim, and a second delivery that finds the row taken."""
    dataset = DatasetFactory()
    FaceImageFactory.create_batch(3, dataset=dataset, split="PublicTest")
    job = InferenceJob.objects.create(dataset=dataset, split="PublicTest", methods=[])
    done = work_run(SPLIT_JOB, job.pk, batch_size=2)
    assert (done.status, done.done, done.total, done.attempts, done.error) == ("succeeded", 3, 3, 1, "")
    assert done.progress == {"kind": "predict", "done": 3, "total": 3} and done.worker and done.finished_at
    assert work_run(SPLIT_JOB, job.pk) is None  # another delivery of the same message: nothing to do

    active_version.status = "archived"
    active_version.save()
    flaky = InferenceJob.objects.create(dataset=dataset, split="PublicTest", methods=[])
    with django_capture_on_commit_callbacks(execute=True):
        released = work_run(SPLIT_JOB, flaky.pk, release_transient=True)  # no active version yet: worth another try
    assert released.status == "queued" and "attempt 1 of 3 ended: NoActiveModelVersion" in released.error
    assert waiting(own_queues["inference.predict_split"]) == [(flaky.pk,)]
    with pytest.raises(Exception, match="no active model version"):
        work_run(SPLIT_JOB, flaky.pk, raise_errors=True)  # a command or test: recorded, then raised
    flaky.refresh_from_db()
    assert (flaky.status, flaky.attempts) == ("failed", 2) and flaky.error.startswith("NoActiveModelVersion")

    cancelled = work_cancel(SPLIT_JOB, InferenceJob.objects.create(dataset=dataset, split="PublicTest").pk)
    assert (cancelled.status, cancelled.error) == ("cancelled", "cancelled by an admin")
    assert work_run(SPLIT_JOB, cancelled.pk) is None and cancelled.attempts == 0


def test_an_interrupted_job_is_never_left_running(active_version):
    """Ctrl-C in a command (or a worker's cold shutdown) ends the attempt on the row before it propagates."""
    dataset = DatasetFactory()
    FaceImageFactory.create_batch(2, dataset=dataset, split="PublicTest")
    job = InferenceJob.objects.create(dataset=dataset, split="PublicTest", methods=[])

    def ctrl_c(event):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        work_run(SPLIT_JOB, job.pk, echo=ctrl_c, batch_size=1)
    job.refresh_from_db()
    assert (job.status, job.error, job.done) == ("failed", "interrupted (KeyboardInterrupt)", 1)


def test_request_threads_sending_their_first_tasks_at_once_all_find_them():
    """Two gunicorn threads sending the first task of a kind at the same moment: before the import lock, the second
    found the task "never registered" while the first was importing the tasks modules, and its row waited for the
    sweeper (seen in the deploy tests: a prediction chunk sent 70 s late)."""
    import subprocess
    import sys

    script = ("import threading, django\n"
              "django.setup()\n"
              "import apps.core.work as work\n"
              "names = ['review.score_labels', 'training.run', 'inference.predict_chunk', 'gallery.faithfulness']\n"
              "barrier, errors = threading.Barrier(len(names)), []\n"
              "def send(name):\n"
              "    barrier.wait()\n"
              "    try:\n"
              "        work._task(name)\n"
              "    except Exception as exc:\n"
              "        errors.append(repr(exc))\n"
              "threads = [threading.Thread(target=send, args=(n,)) for n in names]\n"
              "[t.start() for t in threads]\n"
              "[t.join() for t in threads]\n"
              "print(errors)\n")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "ferplatform.settings.test"}
    for _ in range(2):  # it failed every time without the lock; twice, to be sure it holds
        result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120,
                                cwd=django_settings.BASE_DIR)
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout.strip().splitlines()[-1] == "[]"
