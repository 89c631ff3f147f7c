"""No one user can hold the web process: every waiting request and every export has a per-user rate, a user holds at
most ``WAITS_MAX_CONCURRENT`` waiting requests at once, and the counters live in a cache every process shares (Redis
here; the database without it), so a limit means what it says whatever the number of gunicorn processes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis
import requests
from django.conf import settings as django_settings
from django.core.cache import cache
from django.db import connection
from django.test import Client, override_settings
from django.urls import resolve
from drf_spectacular.generators import SchemaGenerator

from apps.accounts.services import api_token_create
from tests.helpers import api_client
from tests.uploads import samples

ROOT = Path(__file__).resolve().parents[2]
NO_SUCH_UPLOAD = "00000000-0000-4000-8000-000000000001"


def rates(settings, **changes: str):
    """The throttle rates with ``changes`` (scope=rate), as a settings override."""
    current = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    return override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK,
                                             "DEFAULT_THROTTLE_RATES": {**current, **changes}})


def an_upload(client) -> str:
    """An upload whose prediction nobody makes (no worker consumes this test's queue): it stays processing."""
    answer = client.post("/api/uploads/", {"images": [samples.upload_file(samples.face48(), "f.png")]},
                         format="multipart")
    assert answer.status_code == 201, answer.content
    return answer.json()["uploads"][0]["id"]


@pytest.mark.django_db
def test_waiting_reads_have_a_rate_of_their_own(reviewer, researcher, settings):
    client = api_client(reviewer, token=True)
    upload = an_upload(client)
    with rates(settings, waits="2/min"):
        for _ in range(2):
            assert client.get(f"/api/uploads/{upload}/?wait=0.01").status_code == 200
        refused = client.get(f"/api/uploads/{upload}/?wait=0.01")
        assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
        assert refused.json()["code"] == "throttled"
        assert client.get(f"/api/uploads/{upload}/").status_code == 200  # a plain read does not wait: not counted
        other = api_client(researcher, token=True)
        assert other.get(f"/api/uploads/{NO_SUCH_UPLOAD}/?wait=0.01").status_code == 404  # a budget of its own


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/faces/{face}/explanations", "/api/gallery/faces/{face}/explanations",
                                 f"/api/uploads/{NO_SUCH_UPLOAD}/explanations"])
def test_every_on_demand_heatmap_endpoint_is_throttled(researcher, settings, url):
    client = api_client(researcher, token=True)
    path = url.format(face=999_999)
    with rates(settings, explanations="2/min"):
        answers = [client.post(path, {"method": "gradcam"}, format="json").status_code for _ in range(3)]
    assert answers[:2] != [429, 429] and answers[2] == 429, answers


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/review/export/kaggle.csv", "/api/review/export/ferplus.csv",
                                 "/api/review/export/history.csv"])
def test_every_export_is_throttled(researcher, settings, url):
    client = api_client(researcher, token=True)
    with rates(settings, exports="2/min"):
        answers = [client.get(url).status_code for _ in range(3)]
    assert answers == [200, 200, 429]


@pytest.mark.django_db
def test_the_gallery_download_is_throttled_too(researcher, settings):
    browser = Client()
    browser.force_login(researcher)
    with rates(settings, exports="1/min"):
        first, second = browser.get("/gallery/export.zip"), browser.get("/gallery/export.zip")
    assert first.status_code != 429 and second.status_code == 429
    assert int(second["Retry-After"]) >= 1


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["gallery-confusion-png", "gallery-curves-png", "gallery-class-maps-png"])
def test_every_figure_drawn_per_request_is_throttled(researcher, settings, name):
    """The PNG figures are drawn (matplotlib) on each request: a rate of their own, with Retry-After."""
    from django.urls import reverse

    browser = Client()
    browser.force_login(researcher)
    url = reverse(name, args=[999_999])
    with rates(settings, figures="1/min"):
        first, second = browser.get(url), browser.get(url)
    assert first.status_code == 404 and second.status_code == 429
    assert int(second["Retry-After"]) >= 1


def _schema_operations_with(parameter: str) -> list[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    found = []
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if any(p["name"] == parameter and p["in"] == "query" for p in operation.get("parameters", [])):
                found.append((path, method))
    return found


def test_every_view_that_waits_or_exports_is_throttled():
    """Found from the schema (a ``wait`` parameter) and the resolver (an export's name): a new one cannot slip past."""
    from apps.core.throttles import ExportRateThrottle, WaitRateThrottle, WaitSlotThrottle

    waiting = _schema_operations_with("wait")
    assert len(waiting) >= 5
    for path, _method in waiting:
        view = resolve(path.replace("{upload_id}", NO_SUCH_UPLOAD).replace("{id}", "1").replace("{pk}", "1")).func
        classes = set(view.cls.throttle_classes)
        assert {WaitRateThrottle, WaitSlotThrottle} <= classes, (path, classes)
    for path in ("/api/review/export/kaggle.csv", "/api/review/export/ferplus.csv", "/api/review/export/history.csv"):
        assert ExportRateThrottle in resolve(path).func.cls.throttle_classes, path


@pytest.mark.django_db(transaction=True)
def test_a_user_holds_at_most_a_few_waiting_requests(live_server, reviewer, researcher, settings):
    """With ``WAITS_MAX_CONCURRENT`` waits of one user in flight, the next is refused at once (429, Retry-After)
    instead of holding another gunicorn thread; once they end, the user may wait again. Others are not affected."""
    settings.WAITS_MAX_CONCURRENT = 2
    upload = an_upload(api_client(reviewer, token=True))
    mine = requests.Session()
    mine.headers["Authorization"] = f"Token {api_token_create(user=reviewer)[1]}"
    url = f"{live_server.url}/api/uploads/{upload}/"
    held: list[int] = []
    waits = [threading.Thread(target=lambda: held.append(mine.get(f"{url}?wait=3", timeout=30).status_code))
             for _ in range(2)]
    for thread in waits:
        thread.start()
    time.sleep(1.0)
    started = time.monotonic()
    refused = mine.get(f"{url}?wait=3", timeout=30)
    assert refused.status_code == 429 and time.monotonic() - started < 1.0
    assert refused.json()["code"] == "throttled" and int(refused.headers["Retry-After"]) >= 1
    assert mine.get(url, timeout=30).status_code == 200  # not waiting: not bounded
    other = requests.Session()
    other.headers["Authorization"] = f"Token {api_token_create(user=researcher)[1]}"
    assert other.get(f"{live_server.url}/api/uploads/{NO_SUCH_UPLOAD}/?wait=0.5", timeout=30).status_code == 404
    for thread in waits:
        thread.join()
    assert held == [200, 200]
    assert mine.get(f"{url}?wait=0.2", timeout=30).status_code == 200  # the slots were given back


@pytest.mark.django_db(transaction=True)
def test_all_users_together_hold_at_most_a_few_waiting_requests(live_server, reviewer, researcher, settings):
    """``WAITS_MAX_TOTAL`` bounds waits across users, so that several accounts cannot hold every thread either; a
    refused request gives back the per-user slot it took."""
    settings.WAITS_MAX_CONCURRENT, settings.WAITS_MAX_TOTAL = 2, 1
    upload = an_upload(api_client(reviewer, token=True))
    mine = requests.Session()
    mine.headers["Authorization"] = f"Token {api_token_create(user=reviewer)[1]}"
    other = requests.Session()
    other.headers["Authorization"] = f"Token {api_token_create(user=researcher)[1]}"
    held: list[int] = []
    wait = threading.Thread(target=lambda: held.append(
        mine.get(f"{live_server.url}/api/uploads/{upload}/?wait=3", timeout=30).status_code))
    wait.start()
    time.sleep(1.0)
    refused = other.get(f"{live_server.url}/api/uploads/{NO_SUCH_UPLOAD}/?wait=0.5", timeout=30)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    wait.join()
    assert held == [200]
    for _ in range(2):  # the refused request gave its own slot back: the researcher still has both
        assert other.get(f"{live_server.url}/api/uploads/{NO_SUCH_UPLOAD}/?wait=0.2", timeout=30).status_code == 404


@pytest.mark.django_db(transaction=True)
def test_throttle_counts_add_up_across_processes(researcher, settings):
    """Two requests from another process and one from this one count against the same budget of 2."""
    db = connection.settings_dict
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "ferplatform.settings.test", "EXPORTS_THROTTLE_RATE": "2/min",
           "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT'] or 5432}"
                           f"/{db['NAME']}",
           "REDIS_URL": django_settings.CELERY_BROKER_URL}
    code = ("import django; django.setup()\n"
            "from django.contrib.auth import get_user_model\n"
            "from rest_framework.test import APIClient\n"
            "client = APIClient(SERVER_NAME='localhost')\n"
            f"client.force_authenticate(get_user_model().objects.get(pk={researcher.pk}))\n"
            "print([client.get('/api/review/export/history.csv').status_code for _ in range(2)])\n")
    other = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=120)
    assert other.returncode == 0, other.stderr[-3000:]
    assert other.stdout.strip().splitlines()[-1] == "[200, 200]"
    with rates(settings, exports="2/min"):
        assert api_client(researcher).get("/api/review/export/history.csv").status_code == 429


def test_the_cache_is_shared_and_leaves_the_broker_alone():
    """The cache is Redis when REDIS_URL is set, under a key prefix of its own: clearing it (each test does) must not
    empty the broker's queues in the same Redis database."""
    assert django_settings.CACHES["default"]["BACKEND"] == "ferplatform.cache.RedisCache"
    broker = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    broker.rpush("h23-broker-queue-probe", "message")
    try:
        cache.set("probe", 1)
        cache.clear()
        assert cache.get("probe") is None
        assert broker.llen("h23-broker-queue-probe") == 1
    finally:
        broker.delete("h23-broker-queue-probe")


@pytest.mark.django_db
def test_a_cache_that_is_away_lets_requests_through(reviewer, settings, caplog):
    """Counters and "already queued" marks are hints: with Redis away the API answers as if nothing was counted (and
    says so in the log) rather than failing the request."""
    client = api_client(reviewer, token=True)
    upload = an_upload(client)
    away = {"default": {**django_settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}}
    with override_settings(CACHES=away), rates(settings, waits="1/min"):
        answers = [client.get(f"/api/uploads/{upload}/?wait=0.01").status_code for _ in range(3)]
    assert answers == [200, 200, 200]
    assert "cache unavailable" in caplog.text


def test_without_redis_the_cache_is_the_database(monkeypatch, tmp_path):
    import importlib

    import ferplatform.settings.base as base

    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("FERPLATFORM_VAR_DIR", str(tmp_path))
    try:
        assert importlib.reload(base).CACHES["default"]["BACKEND"] == "django.core.cache.backends.db.DatabaseCache"
    finally:
        monkeypatch.undo()
        importlib.reload(base)
