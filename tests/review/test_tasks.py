from __future__ import annotations

import pytest

from apps.review.models import ReviewItem, ScoringRun
from apps.review.scoring import scoring_run_create
from apps.review.tasks import score_labels_task

from .scoring_data import TINY_RECIPE, synthetic_faces


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_scoring_task_through_a_real_worker(review_worker, settings):
    queue, media_root = review_worker
    settings.MEDIA_ROOT = media_root  # the worker reads the PNGs this test writes
    synthetic_faces()
    run = scoring_run_create(folds=2, epochs=1, filter_by="predicted_neq_given", recipe_overrides=TINY_RECIPE)
    result = score_labels_task.apply_async((run.pk,), queue=queue).get(timeout=300)
    assert result == {"scoring_run": run.pk, "status": "succeeded"}
    run.refresh_from_db()
    assert run.status == ScoringRun.Status.SUCCEEDED and run.scored_count == 56
    assert ReviewItem.objects.count() == run.items_created > 0
