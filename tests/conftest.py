from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.core.cache import cache

from apps.accounts.roles import Role
from ferplatform.celery import app as celery_app

from .accounts.factories import UserFactory
from .helpers import write_tiny_checkpoint
from .workers import running_worker

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"

# The tiers, by where a test lives (markers are registered in pyproject.toml): ``-m "not e2e"`` and so on select them.
# e2e drives a real Chromium, deploy starts the production set, faults break Redis, PostgreSQL, disks and workers on
# purpose, fuzz sends generated requests at every API operation. ``worker`` is set test by test (a real Celery worker).
TIER_BY_PATH = {"e2e": "e2e", "deploy": "deploy", "faults": "faults", "ferplatform/test_fuzz.py": "fuzz"}


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        if not item.path.is_relative_to(TESTS):
            continue
        where = item.path.relative_to(TESTS).as_posix()
        for prefix, marker in TIER_BY_PATH.items():
            if where == prefix or where.startswith(prefix + "/"):
                item.add_marker(marker)

# One Chromium (one sync Playwright) for the whole session: e2e and deploy tests share it, since a second
# sync_playwright in the same thread fails while the first is open.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests make here are still sync.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield from _browser()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def _browser():
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing (make test installs it with apt-get)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(autouse=True)
def media_root(tmp_path: Path, settings) -> Path:
    """Every test writes media to its own temp dir, never to var/media."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture(autouse=True)
def empty_cache():
    """Throttle counters and "already queued" marks of one test never reach the next."""
    cache.clear()


@pytest.fixture(autouse=True)
def fresh_runtime():
    """Each test starts and ends with no model loaded in this process (the per-process model cache)."""
    from apps.inference import runtime

    runtime.clear()
    yield
    runtime.clear()


@pytest.fixture
def eager_tasks():
    """Run queued Celery tasks inline (on commit), for tests that want results without a worker."""
    previous = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = True, True
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = previous


# The tiny network's checkpoints (tests/helpers.py) and an active model version made from the first.
@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    return write_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny-v1.pt", seed=1)


@pytest.fixture(scope="session")
def tiny_checkpoint_v2(tmp_path_factory) -> Path:
    return write_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny-v2.pt", seed=2)


@pytest.fixture
def active_version(db, tiny_checkpoint):
    """The tiny checkpoint registered and active. A test with a real worker asks for ``shared_media_root`` first, so
    that the copy registering makes lands where the worker reads."""
    from apps.inference.services.registry import model_version_register

    return model_version_register(checkpoint_path=tiny_checkpoint, name="tiny-v1", activate=True)


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
    log = tmp_path_factory.mktemp("celery") / "worker.log"
    with running_worker(name=f"pytest-{os.getpid()}", queues="interactive,bulk", log=log, purge=True,
                        # One process serves both queues here, unlike make run and make prod: a scoring run's
                        # overlay precompute (bulk) would hold up the next test's upload (interactive) for minutes.
                        # tests/review covers the precompute with a worker of its own.
                        env={"MEDIA_ROOT": str(worker_media_root), "REVIEW_OVERLAY_PRECOMPUTE": "0"}) as worker:
        yield worker


@pytest.fixture
def shared_media_root(settings, media_root, celery_worker_process, worker_media_root) -> Path:
    """Point this test's MEDIA_ROOT at the worker's, so that files either side writes are seen by the other."""
    settings.MEDIA_ROOT = worker_media_root
    return worker_media_root
