"""A real ``celery worker`` subprocess on Redis, reading the test database: the one way the tests start workers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection

from ferplatform.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def running_worker(*, name: str, queues: str, log: Path, env: dict[str, str],
                   purge: bool = False) -> Iterator[subprocess.Popen]:
    """Start a worker named ``name@<host>`` on ``queues`` with ``env`` on top of the test environment, wait until it
    answers a ping, and stop it on exit (SIGTERM, then SIGKILL); a test may kill it first."""
    try:
        redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {settings.CELERY_BROKER_URL} does not answer ({exc}); start it (see docs/operations.md)")
    db = connection.settings_dict
    full_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "ferplatform.settings.test",
        "DATABASE_URL": (f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT'] or 5432}"
                         f"/{db['NAME']}"),
        "REDIS_URL": settings.CELERY_BROKER_URL,
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
        **env,
    }
    node = f"{name}@{os.uname().nodename}"
    command = [sys.executable, "-m", "celery", "-A", "ferplatform", "worker", "-Q", queues, "--pool", "solo",
               *(["--purge"] if purge else []), "--without-gossip", "--without-mingle", "-n", node, "-l", "info"]
    with open(log, "w") as log_file:
        worker = subprocess.Popen(command, cwd=ROOT, env=full_env, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while not celery_app.control.ping(destination=[node], timeout=1):
            if worker.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"celery worker did not start:\n{log.read_text()[-4000:]}")
        yield worker
    finally:
        if worker.poll() is None:
            worker.terminate()
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
