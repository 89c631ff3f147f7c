"""PostgreSQL restarted under the running platform: a cluster of the test's own, gunicorn, a worker per queue, a
trickle of API and page requests and a split job running on the bulk worker.

While it is down the API answers a 503 in its error shape and pages the plain error page, within seconds and never
a 500; an upload is refused and leaves no file. Once it is back the same processes answer again, without a restart;
the interrupted split job is taken back (by its task or the sweeper) and finished exactly once on the same worker,
and an upload goes through the same interactive worker once."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.faults.stack import LoadThread, PostgresCluster, RedisServer, Stack, face_png, missing_binaries, wait_until

pytestmark = [pytest.mark.worker,
              pytest.mark.skipif(bool(missing_binaries(postgres=True)),
                                 reason=f"needs {', '.join(missing_binaries(postgres=True))}")]

DOWN_WITHIN = 5.0  # s from `pg_ctl stop` to the first 503 (connect_timeout is 5 s; refused connections fail at once)
UP_WITHIN = 20.0  # s from `pg_ctl start` to answers again (CONN_HEALTH_CHECKS drop the dead connection)
API, PAGE = "/api/uploads/", "/"
FACES_PER_CLASS = 30  # 210 faces for the split job, in batches of 8: a few seconds of work, a query per batch
RESEND_AFTER = 1  # s a queued row waits without a message before the sweeper sends it
HEARTBEAT_TIMEOUT = 3  # s without a heartbeat before the sweeper takes a running job back (workers beat every 1 s)


@pytest.fixture
def platform(tmp_path: Path):
    """Own PostgreSQL (migrated; a reviewer with a token and a session; an active tiny model; synthetic faces and a
    split job over them, queued but not sent) and Redis; gunicorn, an interactive and a bulk worker on them, all
    started at once. Everything is stopped and removed at the end."""
    pg = PostgresCluster()
    redis = RedisServer(tmp_path, appendonly=False)
    stack = None
    try:
        pg.init()
        pg.start()
        redis.start()
        stack = Stack(base=tmp_path, database_url=pg.create_database("ferplatform"), redis_url=redis.url(),
                      media_root=tmp_path / "media",
                      extra_env={"INFERENCE_BATCH_SIZE": "8", "WORK_HEARTBEAT_SECONDS": "1",
                                 "WORK_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
                                 "WORK_RESEND_AFTER": str(RESEND_AFTER)})
        # Nothing below needs the database before a request or a task comes: boot them while it is migrated.
        setup = stack.action_start("platform_setup", migrate=True, checkpoint_dir=str(tmp_path),
                                   faces_per_class=FACES_PER_CLASS, split_job="row")
        web = stack.start_web()
        workers = stack.start_worker(name="interactive", queues="interactive"), stack.start_worker(name="bulk",
                                                                                                 queues="bulk")
        setup = setup.result()
        web.wait_ready()
        for worker in workers:
            worker.wait_ready()
        yield pg, stack, web, workers, setup
    finally:
        if stack is not None:
            stack.close()
        redis.close()
        pg.close()


def media_files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def job_row(pg: PostgresCluster, job: int) -> tuple:
    return pg.execute("SELECT status, attempts, done, total FROM inference_inferencejob WHERE id = %s", (job,),
                      database="ferplatform")[0]


def test_postgres_restart_answers_503_then_recovers_without_restarting_anything(platform):
    pg, stack, web, (worker, bulk), setup = platform
    api = web.session(token=setup["token"])
    page = web.session(session_cookie=setup["session"])
    assert api.get(web.url + API, timeout=10).status_code == 200
    assert page.get(web.url + PAGE, timeout=10).status_code == 200
    gunicorn_workers = web.worker_pids()
    job = setup["split_job"]
    # Beat's sweep: the job's row waits without a message, so the sweeper sends it; the bulk worker takes it. The
    # sweeper only sends rows older than WORK_RESEND_AFTER, and setup can finish after the servers are ready: wait
    # out the row's age first (the database's clock, as the sweeper's query uses it).
    (age,) = pg.execute("SELECT extract(epoch FROM now() - created_at) FROM inference_inferencejob WHERE id = %s",
                        (job,), database="ferplatform")[0]
    time.sleep(max(0.0, RESEND_AFTER + 0.5 - float(age)))
    assert stack.beat_sweep()["split_job"]["resent"] == [job]

    load = LoadThread(web.session(token=setup["token"], session_cookie=setup["session"]),
                      [web.url + API, web.url + PAGE])
    load.start()
    try:
        wait_until(lambda: job_row(pg, job)[2] >= 16, timeout=120, what="the split job under way", interval=0.05)
        pg.stop("fast")
        stopped = time.monotonic()
        wait_until(lambda: load.first(web.url + API, 503, after=stopped) and load.first(web.url + PAGE, 503,
                                                                                        after=stopped),
                   timeout=DOWN_WITHIN + 10, what="503s while PostgreSQL is down")
        api_down = load.first(web.url + API, 503, after=stopped)
        page_down = load.first(web.url + PAGE, 503, after=stopped)

        # An upload while it is down: a 503 too, and nothing is left on disk.
        files_before = media_files(stack.media_root)
        refused = web.upload(api, face_png(1))
        assert refused.status_code == 503 and refused.json()["code"] == "database_unavailable"
        assert media_files(stack.media_root) == files_before

        pg.start()
        started = time.monotonic()
        wait_until(lambda: load.first(web.url + API, 200, after=started) and load.first(web.url + PAGE, 200,
                                                                                        after=started),
                   timeout=UP_WITHIN, what="200s once PostgreSQL is back")
        api_up = load.first(web.url + API, 200, after=started)
        page_up = load.first(web.url + PAGE, 200, after=started)
    finally:
        answers = load.stop()

    print(f"\nPostgreSQL down: first API 503 after {api_down.at + api_down.seconds - stopped:.2f} s, page 503 after "
          f"{page_down.at + page_down.seconds - stopped:.2f} s; back: API 200 after "
          f"{api_up.at + api_up.seconds - started:.2f} s, page 200 after {page_up.at + page_up.seconds - started:.2f}"
          f" s; {len(answers)} requests, slowest {max(a.seconds for a in answers):.2f} s")
    # The API's 503: its one error shape, with Retry-After.
    assert api_down.content_type.startswith("application/json") and api_down.retry_after == "5"
    assert '"code":"database_unavailable"' in api_down.body.replace(" ", "")
    assert api_down.at + api_down.seconds - stopped < DOWN_WITHIN
    # The page's 503: the plain error page, no traceback, nothing of the user (that would need the database).
    assert page_down.content_type.startswith("text/html") and 'data-code="database_unavailable"' in page_down.body
    assert "Traceback" not in page_down.body and "rita-reviewer" not in page_down.body
    # Through it all, every request got an answer, 200 or 503, each within the connect timeout and a margin.
    statuses = {a.status for a in answers}
    assert statuses <= {200, 503}, [a for a in answers if a.status not in (200, 503)][:3]
    assert max(a.seconds for a in answers) < 8
    # Nothing was restarted: the same gunicorn workers, the same Celery workers.
    assert web.process.alive() and web.worker_pids() == gunicorn_workers
    assert worker.process.alive() and bulk.process.alive()

    # The split job lost its connection mid-batch. Its task puts it back when it can; when it could not (the
    # database was away, or its connection still dead), the sweeper does once the heartbeat is stale.
    wait_until(lambda: bulk.tasks_ended("inference.predict_split") >= 1, timeout=30, what="the interrupted task")
    status, attempts = job_row(pg, job)[:2]
    taken_back_by = "its task"
    if (status, attempts) == ("running", 1):  # the task could not put it back: left to the sweeper
        (silent,) = pg.execute("SELECT extract(epoch FROM now() - heartbeat_at) FROM inference_inferencejob WHERE "
                               "id = %s", (job,), database="ferplatform")[0]
        time.sleep(max(0.0, HEARTBEAT_TIMEOUT + 0.5 - float(silent)))
        assert stack.beat_sweep()["split_job"]["requeued"] == [job]
        taken_back_by = "the sweeper"
    print(f"the interrupted split job was taken back by {taken_back_by}")

    # An upload after the recovery goes through the same interactive worker, once.
    created = web.upload(api, face_png(2))
    assert created.status_code == 201, created.text
    (upload,) = created.json()["uploads"]
    result = api.get(f"{web.url}{API}{upload['id']}/?wait=30", timeout=40).json()
    assert result["status"] == "done", result
    wait_until(lambda: worker.tasks_succeeded("inference.predict_chunk") == 1, timeout=30, what="the chunk's end")
    rows = pg.execute("SELECT c.status, c.attempts, (SELECT count(*) FROM inference_prediction p WHERE p.face_id = "
                      "u.face_id), (SELECT count(*) FROM inference_explanation e WHERE e.face_id = u.face_id) FROM "
                      "uploads_upload u JOIN inference_predictionchunk c ON c.id = u.chunk_id WHERE u.id = %s",
                      (upload["id"],), database="ferplatform")
    assert rows == [("succeeded", 1, 1, 1)]
    assert worker.process.alive()

    # The split job: finished on the same bulk worker, each face predicted and explained once, one file per heatmap.
    wait_until(lambda: job_row(pg, job)[0] in ("succeeded", "failed")
               and bulk.tasks_ended("inference.predict_split") >= 2, timeout=60, what="the split job to finish")
    assert job_row(pg, job) == ("succeeded", 2, setup["faces"], setup["faces"])
    counts = pg.execute(
        "SELECT (SELECT count(*) FROM inference_prediction), (SELECT count(DISTINCT face_id) FROM "
        "inference_prediction), (SELECT count(*) FROM inference_explanation), (SELECT count(*) FROM "
        "inference_prediction p JOIN faces_faceimage f ON f.id = p.face_id WHERE f.current_label IS NOT NULL AND "
        "f.current_label <> p.predicted_label)", database="ferplatform")[0]
    faces = setup["faces"] + 1  # and the upload
    assert counts[:2] == (faces, faces)
    assert counts[2] == faces + counts[3]  # the predicted class of each face, and its label where that differs
    overlays = {str(p.relative_to(stack.media_root)) for p in media_files(stack.media_root / "explanations")}
    stored = {name for (name,) in pg.execute("SELECT overlay FROM inference_explanation", database="ferplatform")}
    assert overlays == stored
    assert bulk.process.alive() and bulk.tasks_succeeded("inference.predict_split") == 1
