from __future__ import annotations

import pytest

from apps.core.tasks import health_check
from tests.accounts.factories import UserFactory


@pytest.mark.django_db
def test_health_check_called_directly_reports_the_database():
    UserFactory()
    report = health_check()
    assert report["status"] == "ok" and report["database"] == "postgresql" and report["users"] == 1


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_health_check_through_a_real_worker_sees_the_same_database(celery_worker_process):
    UserFactory.create_batch(2)
    result = health_check.apply_async(queue="interactive")
    report = result.get(timeout=60)
    assert report["status"] == "ok"
    assert report["users"] == 2  # committed rows of this test: the worker reads the test database
    assert health_check.apply_async(queue="bulk").get(timeout=60)["status"] == "ok"  # the bulk queue is consumed too
