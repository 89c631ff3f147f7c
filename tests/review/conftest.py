from __future__ import annotations

import pytest

from apps.accounts.roles import Role
from tests.accounts.factories import UserFactory


@pytest.fixture(autouse=True)
def review_settings(settings, tmp_path):
    settings.REVIEW_QUORUM = 2
    settings.REVIEW_MAX_VOTES = 3
    settings.REVIEW_GOLD_PERCENT = 0
    settings.REVIEW_LEASE_SECONDS = 300
    settings.REVIEW_PREFETCH = 3
    settings.REVIEW_SCORING_DIR = tmp_path / "scoring"
    return settings


@pytest.fixture
def reviewers(db):
    return [UserFactory(username=f"reviewer{i}", roles=[Role.REVIEWER]) for i in range(4)]


@pytest.fixture(scope="session")
def review_worker(django_db_setup, django_db_blocker, tmp_path_factory):
    """A real ``celery worker`` on Redis reading the test database, with a media folder shared with the test.

    It consumes its own queue, so that another worker on the same broker (tests/core starts one on ``default,gpu``,
    with other media settings) cannot take the task. Yields ``(queue_name, media_root)``.
    """
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    import redis
    from django.conf import settings
    from django.db import connection

    from ferplatform.celery import app as celery_app

    try:
        redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {settings.CELERY_BROKER_URL} does not answer ({exc}); start it (see README)")
    base = tmp_path_factory.mktemp("review-worker")
    db = connection.settings_dict
    queue = f"review-test-{os.getpid()}"
    node = f"review-{os.getpid()}@{os.uname().nodename}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "ferplatform.settings.test",
        "DATABASE_URL": (f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT'] or 5432}"
                         f"/{db['NAME']}"),
        "REDIS_URL": settings.CELERY_BROKER_URL,
        "MEDIA_ROOT": str(base / "media"),
        "REVIEW_SCORING_DIR": str(base / "scoring"),
        "OMP_NUM_THREADS": "1",
    }
    log = base / "worker.log"
    with open(log, "w") as log_file:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "ferplatform", "worker", "-Q", queue, "--pool", "solo",
             "--without-gossip", "--without-mingle", "-n", node, "-l", "info"],
            cwd=Path(__file__).resolve().parents[2], env=env, stdout=log_file, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 90
        while not celery_app.control.ping(destination=[node], timeout=1):
            if worker.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"celery worker did not start:\n{log.read_text()[-4000:]}")
        yield queue, base / "media"
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
