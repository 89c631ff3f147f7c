from __future__ import annotations

import pytest
from django.utils import timezone

from apps.review.models import ScoringRun

pytestmark = pytest.mark.django_db


def test_empty_queue_says_how_it_gets_filled(client, reviewer, admin_user):
    client.force_login(reviewer)
    page = client.get("/review/").content.decode()
    assert 'id="no-scoring-run"' in page and "scoring page" in page
    assert 'href="/review/scoring/"' not in page  # reviewers cannot open it
    client.force_login(admin_user)
    assert 'href="/review/scoring/"' in client.get("/review/").content.decode()

    client.force_login(reviewer)
    ScoringRun.objects.create(status=ScoringRun.Status.RUNNING)
    page = client.get("/review/").content.decode()
    assert 'id="no-scoring-run"' not in page and "is running" in page
    assert "its flagged faces fill the queue when it finishes" in page


def test_the_queue_names_the_run_that_filled_it_and_the_one_refining_it(client, reviewer):
    filled = ScoringRun.objects.create(status=ScoringRun.Status.SUCCEEDED, method=ScoringRun.Method.IN_SAMPLE,
                                       folds=0, ranking="normalized_margin", issue_count=1234,
                                       finished_at=timezone.now())
    client.force_login(reviewer)
    page = client.get("/review/").content.decode()
    assert f"scoring run <strong>#{filled.pk}</strong>" in page
    assert '<span id="queue-method">in-sample</span>' in page and "provisional" in page
    assert "normalized_margin" in page and '<span id="queue-flagged">1234</span>' in page
    assert 'id="queue-refining"' not in page

    refining = ScoringRun.objects.create(status=ScoringRun.Status.RUNNING, progress={"fraction": 0.25})
    page = client.get("/review/").content.decode()
    assert f"Run #{refining.pk} (out-of-fold) is running, 25 % done" in page

    ScoringRun.objects.filter(pk=refining.pk).update(status=ScoringRun.Status.SUCCEEDED, issue_count=99,
                                                     finished_at=timezone.now())
    page = client.get("/review/").content.decode()
    assert '<span id="queue-method">out-of-fold</span>' in page and '<span id="queue-flagged">99</span>' in page
    assert 'id="queue-refining"' not in page
