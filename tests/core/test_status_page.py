"""The status page's figures (``apps.core.status``) from real rows in PostgreSQL and real messages in Redis: per
queue the messages waiting, the workers consuming it and the age of the oldest job; per kind the queued, running and
failed rows, the latest failures, and the rows that look lost, with what the sweeper will do (checked against the
sweeper itself)."""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import timedelta

import pytest
import redis
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from apps.core.broker import REDIS_PRIORITY_SEPARATOR, queue_lengths
from apps.core.status import ALERT_CODES, SWEEP_TASK, duration_text, platform_status, queue_status
from apps.core.work import QUEUES, task_queues, work_sweep
from apps.inference.models import PredictionChunk
from apps.inference.services.chunks import PREDICTION_CHUNK
from apps.review.models import ScoringRun
from apps.review.scoring import SCORING_RUN
from apps.training.models import TrainingRun
from ferplatform.celery import app as celery_app

pytestmark = pytest.mark.django_db


# --- helpers the e2e test shares ---------------------------------------------------------------------------------

def route_to_private_queues(settings) -> dict[str, str]:
    """Route every task of the interactive and bulk queues to queues of this test's own, which no worker consumes
    (the session worker of tests/conftest.py consumes interactive and bulk). Returns {platform queue: private}."""
    tag = uuid.uuid4().hex[:8]
    names = {queue: f"status-{tag}-{queue}" for queue in QUEUES}
    settings.CELERY_TASK_ROUTES = {task: {"queue": names.get(queue, queue)} for task, queue in task_queues().items()}
    return names


def drop_queues(names, broker_url: str) -> None:
    keys = [key for name in names for key in (name, *(f"{name}{REDIS_PRIORITY_SEPARATOR}{n}" for n in (3, 6, 9)),
                                              f"_kombu.binding.{name}")]
    redis.Redis.from_url(broker_url).delete(*keys)


def aged(model, *, age_s: float, **fields):
    """A row created ``age_s`` seconds ago (``created_at`` is auto_now_add: set it afterwards)."""
    row = model.objects.create(**fields)
    model.objects.filter(pk=row.pk).update(created_at=timezone.now() - timedelta(seconds=age_s))
    row.refresh_from_db()
    return row


def ago(seconds: float):
    return timezone.now() - timedelta(seconds=seconds)


def sweeper_scheduled(*, last_run_s: float | None = 5, enabled: bool = True) -> PeriodicTask:
    """Beat's schedule of the sweeper as the migration makes it (a transactional test before may have flushed it)."""
    PeriodicTask.objects.filter(task=SWEEP_TASK).delete()
    every, _ = IntervalSchedule.objects.get_or_create(every=30, period="seconds")
    return PeriodicTask.objects.create(name="core: sweep lost work", task=SWEEP_TASK, interval=every,
                                       enabled=enabled, last_run_at=None if last_run_s is None else ago(last_run_s))


def by_kind(status) -> dict[str, dict]:
    return {k["kind"]: k for k in status["jobs_by_kind"]}


def by_queue(status) -> dict[str, dict]:
    return {q["queue"]: q for q in status["queue_details"]}


def codes(alerts) -> set[str]:
    return {a["code"] for a in alerts}


@pytest.fixture
def queues(settings):
    broker_url = settings.CELERY_BROKER_URL  # a test may point it at a broker that is down
    names = route_to_private_queues(settings)
    yield names
    drop_queues(names.values(), broker_url)


# --- tests -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0 s"), (59.9, "59 s"), (60, "1 min 0 s"), (192, "3 min 12 s"), (3900, "1 h 5 min"),
    (3 * 86400 + 4 * 3600 + 59, "3 d 4 h"), (-5, "0 s"),
])
def test_durations_read_like_a_person_says_them(seconds, text):
    assert duration_text(seconds) == text


def test_per_kind_counts_ages_failures_and_lost_rows(queues):
    sweeper_scheduled()
    never_sent = aged(PredictionChunk, age_s=600, face_ids=[1])
    waiting = aged(PredictionChunk, age_s=300, face_ids=[2], last_sent_at=ago(300))
    gone = aged(PredictionChunk, age_s=240, face_ids=[3], last_sent_at=ago(240))
    fresh = aged(PredictionChunk, age_s=1, face_ids=[4])  # its message is on the way: no alarm yet
    lost = aged(PredictionChunk, age_s=900, face_ids=[5], status="running", attempts=1, heartbeat_at=ago(600))
    beating = aged(PredictionChunk, age_s=900, face_ids=[6], status="running", attempts=1, heartbeat_at=ago(5))
    last_try = aged(ScoringRun, age_s=4000, status="running", attempts=3, heartbeat_at=ago(3000))
    failures = [aged(ScoringRun, age_s=9000, status="failed", finished_at=ago(age), error=f"boom {age} " + "x" * 400)
                for age in (7200, 60, 3600, 10800)]
    aged(TrainingRun, age_s=30, last_sent_at=ago(30), trigger="api", recipe_name="scoring", arch="fer_vgg", epochs=1)
    celery_app.send_task("inference.predict_chunk", args=[waiting.pk], queue=queues["interactive"])
    assert queue_lengths((queues["interactive"],)) == {queues["interactive"]: 1}

    status = platform_status()
    kinds = by_kind(status)

    chunks = kinds["prediction_chunk"]
    assert (chunks["queue"], chunks["queued"], chunks["running"], chunks["failed"]) == (queues["interactive"], 4, 2, 0)
    assert chunks["oldest_queued_id"] == never_sent.pk and chunks["oldest_wait"].startswith("10 min ")
    assert chunks["level"] == "red"
    assert chunks["never_sent"] == 2  # the fresh one counts, but only the overdue one is due for a re-send
    assert chunks["lost_running_ids"] == [lost.pk] and chunks["lost_running_final"] == 0
    assert sorted(chunks["resend_due_ids"]) == sorted([never_sent.pk, gone.pk]) and chunks["message_missing"] == 1
    alerts = {a["code"]: a["text"] for a in chunks["alerts"]}
    assert set(alerts) == {"lost_running", "never_sent", "message_missing"}
    assert f"#{lost.pk}" in alerts["lost_running"] and f"#{beating.pk}" not in alerts["lost_running"]
    assert "no heartbeat for over 120 s" in alerts["lost_running"]
    assert "The sweeper puts 1 back in the queue on its next pass (every 30 s)." in alerts["lost_running"]
    assert f"#{never_sent.pk}" in alerts["never_sent"] and f"#{fresh.pk}" not in alerts["never_sent"]
    assert f"#{gone.pk}" in alerts["message_missing"] and f"#{waiting.pk}" not in alerts["message_missing"]

    scoring = kinds["scoring_run"]
    assert (scoring["queued"], scoring["running"], scoring["failed"]) == (0, 1, 4)
    assert scoring["lost_running_ids"] == [last_try.pk] and scoring["lost_running_final"] == 1
    assert "The sweeper fails 1 (no attempts left of 3)" in scoring["alerts"][0]["text"]
    latest = scoring["latest_failures"]
    assert [f["id"] for f in latest] == [failures[1].pk, failures[2].pk, failures[0].pk]  # newest first, 3 of 4
    assert latest[0]["error"].startswith("boom 60 ") and len(latest[0]["error"]) == 300
    assert latest[0]["error"].endswith("…")
    assert latest[0]["ago"].startswith("1 min ") and latest[1]["ago"] == "1 h 0 min ago"
    assert latest[0]["admin_url"] == reverse("admin:review_scoringrun_change", args=[failures[1].pk])

    training = kinds["training_run"]
    assert (training["queued"], training["level"], training["alerts"]) == (1, "ok", [])

    interactive, bulk = by_queue(status)[queues["interactive"]], by_queue(status)[queues["bulk"]]
    assert interactive["messages"] == 1 and interactive["workers"] == []  # nobody consumes a private queue
    assert (interactive["queued"], interactive["running"]) == (4, 2)
    assert interactive["oldest_queued_kind"] == "prediction_chunk" and interactive["oldest_queued_id"] == never_sent.pk
    assert interactive["level"] == "red"
    texts = {a["code"]: a["text"] for a in interactive["alerts"]}
    assert texts == {"no_worker": "no worker consumes this queue: 4 jobs wait."}
    assert interactive["waiting"] is None  # nobody to wait for: that is the alarm above
    assert bulk["messages"] == 0 and bulk["queued"] == 1 and bulk["running"] == 1  # the training run, the scoring run
    assert {a["text"] for a in bulk["alerts"]} == {"no worker consumes this queue: 1 job waits."}

    assert status["level"] == "red" and [a["level"] for a in status["alerts"]][0] == "red"
    assert {a["where"] for a in status["alerts"]} >= {
        f"queue {queues['interactive']}", f"queue {queues['bulk']}", "prediction chunks (uploads, review pages)",
        "label-scoring runs"}
    assert codes(status["alerts"]) <= set(ALERT_CODES)
    assert status["queues"][queues["interactive"]] == 1 and set(QUEUES) <= set(status["queues"])


def test_what_the_page_says_the_sweeper_will_do_is_what_it_does(queues, django_capture_on_commit_callbacks):
    sweeper_scheduled()
    never_sent = aged(PredictionChunk, age_s=600, face_ids=[1])
    gone = aged(PredictionChunk, age_s=240, face_ids=[2], last_sent_at=ago(240))
    lost = aged(PredictionChunk, age_s=900, face_ids=[3], status="running", attempts=1, heartbeat_at=ago(600))
    last_try = aged(ScoringRun, age_s=4000, status="running", attempts=3, heartbeat_at=ago(3000))
    kinds = by_kind(platform_status())

    with django_capture_on_commit_callbacks(execute=True):  # a row put back is sent once the sweep commits
        done = work_sweep(kinds=[PREDICTION_CHUNK, SCORING_RUN])

    chunks, scoring = kinds["prediction_chunk"], kinds["scoring_run"]
    assert sorted(done["prediction_chunk"]["resent"]) == sorted(chunks["resend_due_ids"]) == sorted(
        [never_sent.pk, gone.pk])
    assert done["prediction_chunk"]["requeued"] == chunks["lost_running_ids"] == [lost.pk]
    assert done["scoring_run"]["failed"] == scoring["lost_running_ids"] == [last_try.pk]
    # Sent again, into the private queue: the page now finds their messages, and nothing is lost any more.
    assert queue_lengths((queues["interactive"],)) == {queues["interactive"]: 3}
    after = by_kind(platform_status())
    assert after["prediction_chunk"]["resend_due"] == 0 and after["prediction_chunk"]["lost_running"] == 0
    assert after["scoring_run"]["failed"] == 1 and after["scoring_run"]["latest_failures"][0]["id"] == last_try.pk
    assert "stopped sending heartbeats" in after["scoring_run"]["latest_failures"][0]["error"]


def test_a_message_waiting_in_the_broker_is_not_lost(queues):
    sweeper_scheduled()
    sent = aged(PredictionChunk, age_s=600, face_ids=[1], last_sent_at=ago(600))
    assert by_kind(platform_status())["prediction_chunk"]["message_missing"] == 1
    celery_app.send_task("inference.predict_chunk", args=[sent.pk], queue=queues["interactive"])
    chunks = by_kind(platform_status())["prediction_chunk"]
    assert (chunks["message_missing"], chunks["resend_due"]) == (0, 0)
    assert codes(chunks["alerts"]) == set() and chunks["level"] == "ok"  # slow, but not lost


def test_broker_down_is_said_plainly_and_the_rows_are_still_read(settings, queues):
    sweeper_scheduled()
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    aged(PredictionChunk, age_s=600, face_ids=[1])
    started = time.monotonic()
    status = platform_status()
    assert time.monotonic() - started < 3
    assert status["level"] == "red" and status["queues"] == {}
    broker_alerts = [a for a in status["alerts"] if a["code"] == "broker_down"]
    assert len(broker_alerts) == 1 and broker_alerts[0]["where"] == "broker"  # said once, not once per queue
    interactive = by_queue(status)[queues["interactive"]]
    assert interactive["messages"] is None and interactive["workers"] is None and interactive["queued"] == 1
    assert codes(interactive["alerts"]) == {"broker_down"}  # "no worker" is not known: not said
    chunks = by_kind(status)["prediction_chunk"]
    assert chunks["queued"] == 1 and codes(chunks["alerts"]) == {"waits_for_broker"}
    assert "the sweeper sends it once it answers" in chunks["alerts"][0]["text"]


@pytest.mark.parametrize(("schedule", "code", "phrase"), [
    (None, "sweeper_off", "once it is enabled again"),
    ({"enabled": False}, "sweeper_off", "once it is enabled again"),
    ({"last_run_s": None}, "sweeper_late", "on its next pass (every 30 s)"),
    ({"last_run_s": 3600}, "sweeper_late", "on its next pass (every 30 s)"),
    ({"last_run_s": 10}, None, "on its next pass (every 30 s)"),
])
def test_a_sweeper_that_does_not_run_is_flagged(queues, schedule, code, phrase):
    if schedule is None:
        PeriodicTask.objects.filter(task=SWEEP_TASK).delete()
    else:
        sweeper_scheduled(**schedule)
    aged(PredictionChunk, age_s=600, face_ids=[1], status="running", attempts=1, heartbeat_at=ago(600))
    status = platform_status()
    sweeper = status["sweeper"]
    assert codes(sweeper["alerts"]) == ({code} if code else set())
    assert {a["code"] for a in status["alerts"] if a["where"] == "sweeper"} == codes(sweeper["alerts"])
    assert phrase in by_kind(status)["prediction_chunk"]["alerts"][0]["text"]
    if schedule == {"last_run_s": 3600}:
        assert "beat last sent the sweeper 1 h 0 min ago (due every 30 s): is celery beat running?" in \
            sweeper["alerts"][0]["text"]


def test_the_api_and_the_page_carry_the_same_figures(client, admin_user, reviewer, queues):
    sweeper_scheduled()
    oldest = aged(TrainingRun, age_s=400, trigger="api", recipe_name="scoring", arch="fer_vgg", epochs=1)
    aged(ScoringRun, age_s=50, status="failed", finished_at=ago(40), error="CUDA out of memory")
    client.force_login(reviewer)
    assert client.get(reverse("api-status")).status_code == 403

    client.force_login(admin_user)
    body = client.get(reverse("api-status")).json()
    bulk = by_queue(body)[queues["bulk"]]
    assert bulk["oldest_queued_id"] == oldest.pk and bulk["oldest_wait"].startswith("6 min ")
    assert bulk["queued"] == 1 and bulk["workers"] == [] and bulk["messages"] == 0
    assert "no worker consumes this queue: 1 job waits." in {a["text"] for a in bulk["alerts"]}
    scoring = by_kind(body)["scoring_run"]
    assert scoring["failed"] == 1 and scoring["latest_failures"][0]["error"] == "CUDA out of memory"
    assert isinstance(body["queues"][queues["bulk"]], int) and body["thresholds"] == {
        "resend_after_s": 60, "heartbeat_timeout_s": 120}

    page = client.get(reverse("status")).content.decode()
    data = json.loads(re.search(r'<script id="status-data" type="application/json">(.*?)</script>', page, re.S)[1])
    assert codes(by_queue(data)[queues["bulk"]]["alerts"]) == codes(bulk["alerts"]) == {"no_worker"}
    assert by_kind(data)["scoring_run"]["latest_failures"][0]["error"] == "CUDA out of memory"
    assert 'src="/static/core/status.js"' in page and f'data-status-url="{reverse("api-status")}"' in page


def test_the_schema_documents_the_queue_and_kind_figures(client, admin_user):
    client.force_login(admin_user)
    schema = client.get(reverse("api-schema"), HTTP_ACCEPT="application/json").json()
    status = schema["components"]["schemas"]["Status"]["properties"]
    assert {"queue_details", "jobs_by_kind", "alerts", "level", "sweeper", "queues", "workers"} <= set(status)
    kind = schema["components"]["schemas"]["StatusKind"]["properties"]
    assert {"queued", "running", "failed", "oldest_wait", "lost_running", "resend_due", "latest_failures"} <= set(kind)
    code = schema["components"]["schemas"]["StatusAlert"]["properties"]["code"]
    code = schema["components"]["schemas"][code["$ref"].rsplit("/", 1)[1]] if "$ref" in code else code
    assert set(code["enum"]) == set(ALERT_CODES)


@pytest.mark.worker
def test_a_queue_lists_the_workers_consuming_it(celery_worker_process):
    sweeper_scheduled()
    aged(PredictionChunk, age_s=600, face_ids=[1])  # no message: the worker never sees it
    status = platform_status()
    interactive = by_queue(status)["interactive"]
    assert any(name.startswith("pytest-") for name in interactive["workers"])
    assert any(name.startswith("pytest-") for name in by_queue(status)["bulk"]["workers"])
    assert codes(interactive["alerts"]) == set()  # a worker consumes it: the row's missing message is the alarm
    assert codes(by_kind(status)["prediction_chunk"]["alerts"]) == {"never_sent"}
    assert interactive["waiting"] is None  # not waiting its turn: lost


def test_a_job_waiting_its_turn_behind_a_running_one_is_no_alarm(queues):
    """Right after the first start, scoring run #2 waits on the one bulk worker behind run #1 for minutes: that is
    the queue working as it should, not something an operator must act on."""
    sweeper_scheduled()
    running = aged(ScoringRun, age_s=900, status="running", attempts=1, heartbeat_at=ago(5), last_sent_at=ago(900))
    waiting = aged(ScoringRun, age_s=388, last_sent_at=ago(388))
    celery_app.send_task("review.score_labels", args=[waiting.pk], queue=queues["bulk"])  # its message waits
    status = platform_status()
    scoring = by_kind(status)["scoring_run"]
    assert (scoring["queued"], scoring["running"], scoring["oldest_wait"]) == (1, 1, "6 min 28 s")
    assert (scoring["level"], scoring["alerts"], scoring["running_id"]) == ("ok", [], running.pk)

    bulk_entry = by_queue(status)[queues["bulk"]]
    consumed = queue_status(queues["bulk"], messages=bulk_entry["messages"],
                            workers=[{"name": "bulk@host", "queues": [queues["bulk"]]}], kinds=status["jobs_by_kind"])
    assert (consumed["level"], consumed["alerts"]) == ("ok", [])
    assert consumed["waiting"] == f"1 job waits its turn behind label-scoring runs #{running.pk}."
    # The same row without its message, or behind a worker that stopped beating, is an alarm.
    ScoringRun.objects.filter(pk=running.pk).update(heartbeat_at=ago(600))
    assert codes(by_kind(platform_status())["scoring_run"]["alerts"]) == {"lost_running"}
