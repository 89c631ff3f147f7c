"""Redis stopped and started under the running platform (a Redis of the test's own; gunicorn, a Celery worker and
``manage.py sweep_work`` on it; the suite's test database). Every unit of work finishes exactly once: each row done
after one claim, one prediction per face, one heatmap per (face, method, class), one model version per training
run, and no file lost or written twice.

- The broker is down during an upload request: 201 at once, the face stored, its chunk queued and never sent; once
  Redis is back, beat's sweep (run by the worker that waited through the outage) sends it and the worker finishes
  it; the web sends the next upload by itself.
- Redis restarts while uploads, a split job and a training run wait in the queue with no worker: with the AOF the
  messages survive (the sweeper leaves them alone); without persistence they are lost and the sweeper sends every
  row again from the database.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from apps.accounts.roles import Role
from apps.accounts.services import api_token_create
from apps.core.work import work_sweep
from apps.faces.models import FaceImage
from apps.inference.models import Explanation, InferenceJob, ModelVersion, Prediction, PredictionChunk
from apps.inference.services.registry import model_version_register
from apps.training.models import TrainingRun
from apps.uploads.models import Upload
from tests.accounts.factories import UserFactory
from tests.faults.stack import RedisServer, Stack, face_png, missing_binaries, wait_until
from tests.inference.conftest import write_tiny_checkpoint
from tests.training.conftest import TINY, synthetic_faces

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True),
              pytest.mark.skipif(bool(missing_binaries()), reason=f"needs {', '.join(missing_binaries())}")]

ACCEPT_WITHIN = 5.0  # s: an upload request never waits on a broker that is down


def suite_database_url() -> str:
    """The pytest test database, for the stack's processes (as ``tests/workers.py`` passes it to its worker)."""
    db = connection.settings_dict
    return f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def no_sends_from_here(monkeypatch):
    """The test process's Celery app talks to the suite's Redis: anything it sent would bypass ours (and could reach
    the suite's worker). Record such sends; the test asserts there were none."""
    import apps.core.work as work

    sent: list[tuple[str, int]] = []
    monkeypatch.setattr(work, "work_send_now", lambda kind, pk, **kw: sent.append((str(kind), pk)) or False)
    return sent


@pytest.fixture
def platform(tmp_path: Path, media_root: Path, settings, no_sends_from_here):
    """``make(appendonly=...)``: our Redis and a ``Stack`` on it and the test database; all stopped at the end."""
    settings.INFERENCE_REFRESH_ON_ACTIVATE = False  # activating below queues nothing
    started: list = []

    def make(*, appendonly: bool) -> tuple[RedisServer, Stack]:
        redis = RedisServer(tmp_path, appendonly=appendonly)
        started.append(redis)
        redis.start()
        stack = Stack(base=tmp_path, database_url=suite_database_url(), redis_url=redis.url(), media_root=media_root)
        started.append(stack)
        return redis, stack

    try:
        yield make
    finally:
        for thing in reversed(started):
            thing.close()
    assert no_sends_from_here == []


@pytest.fixture
def reviewer(db):
    """Anyone logged in may upload."""
    return UserFactory(username="rita-reviewer", roles=[Role.REVIEWER])


@pytest.fixture
def uploader(reviewer):
    """The reviewer's API token."""
    return api_token_create(user=reviewer)[1]


def active_version(tmp_path: Path) -> ModelVersion:
    return model_version_register(checkpoint_path=write_tiny_checkpoint(tmp_path / "tiny-v1.pt", seed=1),
                                  name="tiny-v1", activate=True)


def media_files(root: Path, under: str = "") -> set[Path]:
    folder = root / under
    return {p for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()


def assert_each_face_predicted_and_explained_once(media_root: Path, faces: int) -> None:
    """One prediction per face; per face a heatmap of its predicted class and of its label, no more; one overlay
    file per heatmap row and no other (a write lost or left behind by an interrupted attempt would show here)."""
    predictions = list(Prediction.objects.select_related("face"))
    assert len(predictions) == faces and len({p.face_id for p in predictions}) == faces
    expected = {(p.face_id, "gradcam", t) for p in predictions for t in (p.predicted_label, p.face.current_label)
                if t is not None}
    explanations = list(Explanation.objects.values_list("face_id", "method", "target_label"))
    assert len(explanations) == len(expected) and set(explanations) == expected
    overlays = {str(p.relative_to(media_root)) for p in media_files(media_root, "explanations")}
    assert overlays == set(Explanation.objects.values_list("overlay", flat=True))


def test_an_upload_while_the_broker_is_down_gets_201_and_finishes_once_it_is_back(platform, uploader, tmp_path,
                                                                                  media_root):
    version = active_version(tmp_path)
    redis, stack = platform(appendonly=True)
    stack.extra_env["WORK_RESEND_AFTER"] = "1"  # the sweeper sends a row that waited a second without a message
    web, worker = stack.start_web(), stack.start_worker()
    web.wait_ready()
    worker.wait_ready()
    http = web.session(token=uploader)

    redis.stop()
    assert not redis.ping()
    files_before = media_files(media_root)
    started = time.monotonic()
    response = web.upload(http, face_png(1))
    accepted_in = time.monotonic() - started
    assert response.status_code == 201, response.text
    (body,) = response.json()["uploads"]
    upload = Upload.objects.select_related("chunk", "face__pixels").get(pk=body["id"])
    assert upload.status == Upload.Status.QUEUED and upload.chunk.status == PredictionChunk.Status.QUEUED
    assert upload.chunk.last_sent_at is None and upload.chunk.attempts == 0  # never reached the broker
    face_file = media_root / upload.face.pixels.png.name
    assert face_file.is_file() and files_before <= media_files(media_root)

    redis.start()
    # The sweeper resends a row that has waited WORK_RESEND_AFTER (1 s) without a message. Redis and the worker can be
    # back sooner than that after the upload: then the sweep rightly finds nothing due yet (seen 2 runs in 8).
    time.sleep(max(0.0, started + accepted_in + 1.5 - time.monotonic()))
    swept = stack.beat_sweep()  # what beat sends every 30 s, run by the worker once it has reconnected
    assert swept["prediction_chunk"] == {"resent": [upload.chunk_id], "requeued": [], "failed": []}
    assert all(not any(done.values()) for kind, done in swept.items() if kind != "prediction_chunk"), swept

    def finished():
        upload.refresh_from_db()
        return upload.is_finished

    wait_until(finished, timeout=60, what=f"upload {upload.pk} on the worker", interval=0.2)
    print(f"\nupload accepted in {accepted_in:.2f} s with Redis down; done {time.monotonic() - started:.1f} s "
          "after it was sent")
    upload.chunk.refresh_from_db()
    assert upload.status == Upload.Status.DONE and upload.model_version == version, upload.error
    assert (upload.chunk.status, upload.chunk.attempts) == (PredictionChunk.Status.SUCCEEDED, 1)
    assert_each_face_predicted_and_explained_once(media_root, faces=1)
    assert face_file.is_file() and files_before <= media_files(media_root)  # nothing deleted
    assert http.get(f"{web.url}/api/uploads/{upload.pk}/", timeout=10).json()["status"] == "done"
    # The worker waited through the outage and reconnected by itself; the web sends again by itself too.
    wait_until(lambda: worker.tasks_succeeded("inference.predict_chunk") == 1, timeout=30, what="the chunk's end")
    again = web.upload(http, face_png(2))
    assert again.status_code == 201, again.text
    chunk = PredictionChunk.objects.get(uploads__pk=again.json()["uploads"][0]["id"])
    assert chunk.last_sent_at is not None
    wait_until(lambda: worker.tasks_succeeded("inference.predict_chunk") == 2, timeout=30,
               what="the upload sent after the outage")
    assert PredictionChunk.objects.get(pk=chunk.pk).status == PredictionChunk.Status.SUCCEEDED
    assert_each_face_predicted_and_explained_once(media_root, faces=2)
    assert worker.process.alive()
    # Last, so that everything above is checked whatever the timing: the request did not wait on the broker.
    assert accepted_in < ACCEPT_WITHIN, (
        f"the upload request took {accepted_in:.1f} s with Redis down: apply_async subscribes to the result "
        "backend's pub/sub first (the backend retries 20 x 1 s) before it publishes")


@pytest.mark.parametrize("appendonly", [True, False], ids=["aof-keeps-the-queue", "no-persistence-loses-it"])
def test_work_queued_while_redis_restarts_is_done_exactly_once(platform, reviewer, tmp_path, media_root, settings,
                                                               appendonly):
    synthetic_faces(test_per_class=0)  # no PublicTest: the trained version is not promoted, the active one serves
    active_version(tmp_path)
    redis, stack = platform(appendonly=appendonly)
    # With no worker anywhere: 3 upload requests, a split job and a training run, each sent when its row commits.
    ids = stack.action("work_enqueue", user=reviewer.pk, uploads=3, epochs=1)
    chunks = list(Upload.objects.filter(pk__in=ids["uploads"]).values_list("chunk_id", flat=True))
    job, run = InferenceJob.objects.get(pk=ids["split_job"]), TrainingRun.objects.get(pk=ids["training_run"])
    assert len(set(chunks)) == 3
    assert (redis.waiting("interactive"), redis.waiting("bulk")) == (3, 2), redis.describe()
    assert all(c.last_sent_at for c in PredictionChunk.objects.all()) and job.last_sent_at and run.last_sent_at

    redis.stop()
    assert not redis.ping()
    redis.start()
    if appendonly:
        assert (redis.waiting("interactive"), redis.waiting("bulk")) == (3, 2)  # replayed from the AOF
        # The sweeper, as if every row had waited past WORK_RESEND_AFTER: it finds each message in the broker and
        # sends nothing again (in this process, reading our Redis; a send from here would be recorded and fail).
        settings.CELERY_BROKER_URL = redis.url()
        swept = work_sweep(now=timezone.now() + timedelta(seconds=settings.WORK_RESEND_AFTER + 1))
        assert all(not any(done.values()) for done in swept.values()), swept
        worker = stack.start_worker()
    else:
        assert (redis.waiting("interactive"), redis.waiting("bulk")) == (0, 0)  # the queue is gone
        worker = stack.start_worker()  # boots while the sweeper rebuilds the queue from the rows
        swept = stack.sweep(WORK_RESEND_AFTER="1")
        assert sorted(swept["prediction_chunk"]["resent"]) == sorted(chunks)
        assert swept["split_job"]["resent"] == [job.pk] and swept["training_run"]["resent"] == [run.pk]
    started = time.monotonic()

    def all_finished():
        return (not PredictionChunk.objects.exclude(status__in=["succeeded", "failed"]).exists()
                and not InferenceJob.objects.exclude(status__in=["succeeded", "failed"]).exists()
                and not TrainingRun.objects.filter(status__in=["queued", "running"]).exists())

    tasks = {"inference.predict_chunk": 3, "inference.predict_split": 1, "training.run": 1}
    try:
        wait_until(all_finished, timeout=150, what="every unit of work on the worker", interval=0.3)
        # The rows are final before a task returns; its log line (and, for chunks, the uploads' state) comes after.
        wait_until(lambda: all(worker.tasks_ended(task) >= n for task, n in tasks.items()), timeout=30,
                   what="the tasks' ends in the worker's log")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{worker.process.tail()}") from None
    print(f"\n{'AOF' if appendonly else 'no persistence'}: all work done {time.monotonic() - started:.1f} s after "
          f"the {'worker was started' if appendonly else 'sweep'}")

    for chunk in PredictionChunk.objects.all():
        assert (chunk.status, chunk.attempts) == ("succeeded", 1), chunk.error
    job.refresh_from_db()
    run.refresh_from_db()
    assert (job.status, job.attempts, job.done, job.total) == ("succeeded", 1, 70, 70), job.error
    assert (run.status, run.attempts) == (TrainingRun.Status.SUCCEEDED, 1), run.error
    assert ModelVersion.objects.count() == 2 and run.model_version is not None  # the active one, and the trained one
    checkpoints = {str(p.relative_to(media_root)) for p in media_files(media_root, "models")}
    assert checkpoints == {name for v in ModelVersion.objects.all() for name in (v.checkpoint.name, v.dynamics.name)
                           if name}  # a trained version keeps its training dynamics
    assert Upload.objects.filter(pk__in=ids["uploads"], status=Upload.Status.DONE).count() == 3
    assert_each_face_predicted_and_explained_once(media_root, faces=FaceImage.objects.count())
    # Each message was run once by the worker (no duplicates to skip either).
    assert {task: worker.tasks_succeeded(task) for task in tasks} == tasks


def test_a_training_run_queued_from_the_command_line_reaches_the_broker(platform):
    """``manage.py train_model --queue`` (like the API in the web process) sends the run when its row commits, not a
    sweep later: the process that sends must know the task it sends."""
    redis, stack = platform(appendonly=False)
    stack.manage("train_model", "--queue", "--recipe", "scoring", "--epochs", "1", "--recipe-overrides",
                 json.dumps(TINY))
    run = TrainingRun.objects.get()
    assert run.status == TrainingRun.Status.QUEUED
    assert (run.last_sent_at is not None, redis.waiting("bulk")) == (True, 1), (
        "the run was not sent: this process never imported apps.training.tasks (only workers and beat autodiscover "
        "tasks; apps.core.work looks them up by name)")


def test_sweep_work_says_per_kind_what_it_did(monkeypatch, settings):
    """``manage.py sweep_work`` (here in-process, its sends recorded instead of made): per kind, what it re-sent and
    re-queued, and a warning when the broker does not answer."""
    import io

    import apps.core.work as work
    from apps.faces.services import dataset_get_or_create
    from tests.faults.stack import free_port

    sent: list[tuple[str, int]] = []
    monkeypatch.setattr(work, "work_send_now", lambda kind, pk, **kw: sent.append((kind.name, pk)) or True)
    long_ago = timezone.now() - timedelta(hours=1)
    chunk = PredictionChunk.objects.create(face_ids=[1], methods=["gradcam"])
    PredictionChunk.objects.filter(pk=chunk.pk).update(created_at=long_ago)  # waited without a message
    job = InferenceJob.objects.create(dataset=dataset_get_or_create(name="fer2013"), split="Training",
                                      status="running", attempts=1, heartbeat_at=long_ago)  # its worker is gone
    out, err = io.StringIO(), io.StringIO()
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens
    call_command("sweep_work", stdout=out, stderr=err)
    lines = out.getvalue().splitlines()
    assert f"prediction_chunk: re-sent 1 ({chunk.pk})" in lines
    assert f"split_job: re-queued 1 ({job.pk})" in lines and "training_run: nothing to do" in lines
    assert "the broker does not answer" in err.getvalue()
    assert sorted(sent) == sorted([("prediction_chunk", chunk.pk), ("split_job", job.pk)])  # the re-queued job too
