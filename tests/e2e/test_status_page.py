"""The status page in Chromium: an admin sees, per queue, that no worker consumes it while a job has waited for
minutes, a kind of job with a lost run, the latest failure; and the page refreshes by itself when a job is added."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.accounts.roles import Role
from apps.inference.models import PredictionChunk
from apps.review.models import ScoringRun
from apps.training.models import TrainingRun
from ferplatform.celery import app as celery_app
from tests.accounts.factories import PASSWORD, UserFactory
from tests.core.test_status_page import aged, ago, drop_queues, route_to_private_queues, sweeper_scheduled

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def queues(settings):
    broker_url = settings.CELERY_BROKER_URL
    names = route_to_private_queues(settings)  # the live server runs in this process: it sees the same routes
    yield names
    drop_queues(names.values(), broker_url)


def test_an_admin_reads_a_stuck_pipeline_and_the_page_refreshes(live_server, page, queues):
    UserFactory(username="ada", roles=[Role.ADMIN], is_staff=True)
    sweeper_scheduled()
    waiting = aged(TrainingRun, age_s=600, trigger="api", recipe_name="scoring", arch="fer_vgg", epochs=1,
                   last_sent_at=ago(30))
    lost = aged(ScoringRun, age_s=900, status="running", attempts=1, heartbeat_at=ago(600))
    failed = aged(PredictionChunk, age_s=100, face_ids=[1], status="failed", finished_at=ago(90),
                  error="RuntimeError: CUDA out of memory")
    bulk = queues["bulk"]

    page.goto(live_server.url + reverse("status"))
    page.fill("#id_username", "ada")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")

    row = page.locator(f'#queue-table tr[data-queue="{bulk}"]')
    row.wait_for()
    assert row.get_attribute("data-level") == "red"
    assert row.locator(".consumers").inner_text() == "none" and row.locator(".messages").inner_text() == "0"
    assert row.locator(".oldest").inner_text().startswith("10 min ")
    assert f"training runs #{waiting.pk}" in row.locator(".oldest").inner_text()
    warning = page.locator(f'#queue-table tr[data-queue="{bulk}"] ~ tr.alert-row[data-code="no_worker"]').first
    assert warning.inner_text().endswith("no worker consumes this queue: 1 job waits.")
    assert "level-red" in page.get_attribute("#summary", "class")
    assert f"queue {bulk}: no worker consumes this queue: 1 job waits." in page.inner_text("#summary")

    scoring = page.locator('#kind-table tr[data-kind="scoring_run"]')
    assert scoring.get_attribute("data-level") == "red" and scoring.locator(".running").inner_text() == "1"
    assert scoring.locator(".lost").inner_text() == "1 no heartbeat"
    assert f"(#{lost.pk}): worker killed" in page.inner_text('#kind-table tr.alert-row[data-code="lost_running"]')
    training = page.locator('#kind-table tr[data-kind="training_run"]')
    assert training.locator(".queued").inner_text() == "1"
    assert training.get_attribute("data-level") == "ok"  # waiting 10 min with its message sent: no alarm
    failure = page.locator(f'#failure-table tr[data-kind="prediction_chunk"][data-id="{failed.pk}"]')
    assert failure.locator(".error-text").inner_text() == "RuntimeError: CUDA out of memory"
    assert failure.locator(".when").inner_text().startswith("1 min ")

    # No reload: within one refresh the page shows a message put on the queue and a new job of another kind.
    celery_app.send_task("training.run", args=[waiting.pk], queue=bulk)
    aged(PredictionChunk, age_s=5, face_ids=[2])
    page.wait_for_function(
        f"""() => document.querySelector('#queue-table tr[data-queue="{bulk}"] .messages').textContent === "1" &&
            document.querySelector('#kind-table tr[data-kind="prediction_chunk"] .queued').textContent === "1" """,
        timeout=15_000)
    assert page.inner_text("#refresh-state") == "Refreshes every 5 s."
