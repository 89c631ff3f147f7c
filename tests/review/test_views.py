from __future__ import annotations

import pytest

from apps.review.models import ScoringRun

pytestmark = pytest.mark.django_db


def test_empty_queue_says_how_it_gets_filled(client, reviewer):
    client.force_login(reviewer)
    page = client.get("/review/").content.decode()
    assert 'id="no-scoring-run"' in page and "manage.py score_labels" in page

    ScoringRun.objects.create(status=ScoringRun.Status.RUNNING)
    page = client.get("/review/").content.decode()
    assert 'id="no-scoring-run"' not in page and "is running" in page
