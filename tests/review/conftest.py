from __future__ import annotations

import pytest

from apps.accounts.roles import Role
from tests.accounts.factories import UserFactory


@pytest.fixture(autouse=True)
def review_settings(settings, tmp_path):
    settings.REVIEW_QUORUM = 2
    settings.REVIEW_MAX_VOTES = 3
    settings.REVIEW_LEASE_SECONDS = 300
    settings.REVIEW_PREFETCH = 3
    settings.REVIEW_UNDO_SECONDS = 60
    settings.REVIEW_SCORING_DIR = tmp_path / "scoring"
    return settings


@pytest.fixture
def reviewers(db):
    return [UserFactory(username=f"reviewer{i}", roles=[Role.REVIEWER]) for i in range(4)]


@pytest.fixture(scope="session")
def review_worker(django_db_setup, django_db_blocker, tmp_path_factory):
    """A real ``celery worker`` on Redis reading the test database, with a media folder shared with the test.

    It consumes its own queue, so that another worker on the same broker (tests/core starts one on ``interactive,bulk``,
    with other media settings) cannot take the task. Yields ``(queue_name, media_root)``.
    """
    import os

    from tests.workers import running_worker

    base = tmp_path_factory.mktemp("review-worker")
    queue = f"review-test-{os.getpid()}"
    with running_worker(name=f"review-{os.getpid()}", queues=queue, log=base / "worker.log",
                        env={"MEDIA_ROOT": str(base / "media"), "REVIEW_SCORING_DIR": str(base / "scoring"),
                             "REVIEW_OVERLAY_PRECOMPUTE": "5000"}):  # off in the test settings, the subject here
        yield queue, base / "media"
