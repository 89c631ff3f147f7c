from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection

from apps.accounts.roles import Role
from ferplatform.celery import app as celery_app

from .accounts.factories import UserFactory

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def media_root(tmp_path: Path, settings) -> Path:
    """Every test writes media to its own temp dir, never to var/media."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


# Named users per role for permission tests.
@pytest.fixture
def reviewer(db):
    return UserFactory(username="rita-reviewer", roles=[Role.REVIEWER])


@pytest.fixture
def researcher(db):
    return UserFactory(username="rob-researcher", roles=[Role.RESEARCHER])


@pytest.fixture
def admin_user(db):
    """Replaces pytest-django's fixture of the same name: an admin made the way create_user makes one."""
    return UserFactory(username="ada-admin", roles=[Role.ADMIN], is_staff=True, is_superuser=True)


@pytest.fixture(scope="session")
def worker_media_root(tmp_path_factory) -> Path:
    """MEDIA_ROOT of the real worker; tests that use the worker share it (see ``shared_media_root``)."""
    return tmp_path_factory.mktemp("worker-media")


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker, tmp_path_factory, worker_media_root):
    """A real ``celery worker`` on Redis, reading the test database and ``worker_media_root``, for tests marked
    ``worker``. Session-wide: one worker for every app's tests."""
    try:
        redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {settings.CELERY_BROKER_URL} does not answer ({exc}); start it (see README)")
    db = connection.settings_dict
    database_url = f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
    log = tmp_path_factory.mktemp("celery") / "worker.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "ferplatform.settings.test",
        "DATABASE_URL": database_url,
        "REDIS_URL": settings.CELERY_BROKER_URL,
        "MEDIA_ROOT": str(worker_media_root),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
    }
    with open(log, "w") as log_file:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "ferplatform", "worker", "-Q", "default,gpu", "--pool", "solo",
             "--purge", "--without-gossip", "--without-mingle", "-n", f"pytest-{os.getpid()}@%h", "-l", "info"],
            cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 90
        while not celery_app.control.ping(destination=[f"pytest-{os.getpid()}@{os.uname().nodename}"], timeout=1):
            if worker.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"celery worker did not start:\n{log.read_text()[-4000:]}")
        yield worker
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


@pytest.fixture
def shared_media_root(settings, media_root, celery_worker_process, worker_media_root) -> Path:
    """Point this test's MEDIA_ROOT at the worker's, so that files either side writes are seen by the other."""
    settings.MEDIA_ROOT = worker_media_root
    return worker_media_root
