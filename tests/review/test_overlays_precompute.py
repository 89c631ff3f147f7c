"""After a scoring run the bulk worker computes the review page's prediction and Grad-CAM overlays for the head of the
queue. Before, every item handed out sent that work to the interactive worker while reviewers waited: under 16
reviewers it took half a core next to the web's requests (docs/benchmarks.md, "Load on the production set")."""

from __future__ import annotations

from pathlib import Path

import pytest

from apps.inference.models import Explanation, Prediction
from apps.inference.services.registry import model_version_register
from apps.review.overlays import review_item_model_view, review_overlays_precompute
from apps.review.tasks import overlays_precompute_task

from .factories import ReviewItemFactory

DEFAULT = Path(__file__).resolve().parents[2] / "ml" / "weights" / "default.pt"


def queue_with_a_model() -> tuple[object, list]:
    version = model_version_register(checkpoint_path=DEFAULT, name="default", activate=True)
    # Faces labelled happy (3); the ranking suggests surprise (5). The third item is past the limit of two.
    return version, [ReviewItemFactory(priority=p, suggested_label=5) for p in (0.1, 0.2, 0.3)]


@pytest.mark.django_db
def test_the_head_of_the_queue_gets_its_prediction_and_both_overlays_ahead():
    version, items = queue_with_a_model()
    assert review_overlays_precompute(limit=2) == {"items": 2, "predicted": 2, "overlays": 4}
    for item in items[:2]:
        stored = Explanation.objects.filter(face=item.face, model_version=version, method="gradcam")
        assert set(stored.values_list("target_label", flat=True)) == {3, 5}
        view = review_item_model_view(item=item)
        assert view["pending"] == [] and set(view["overlays"]) == {"current", "suggestion"}
    assert not Explanation.objects.filter(face=items[2].face).exists()
    assert not Prediction.objects.filter(face=items[2].face).exists()
    # Stored work is skipped; without an active version there is nothing to compute with.
    assert review_overlays_precompute(limit=2) == {"items": 2, "predicted": 0, "overlays": 0}
    type(version).objects.filter(pk=version.pk).update(status=type(version).Status.READY)
    assert review_overlays_precompute(limit=2) == {"items": 0, "predicted": 0, "overlays": 0}


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_precompute_task_through_a_real_worker(review_worker, settings):
    queue, media_root = review_worker
    settings.MEDIA_ROOT = media_root  # the worker reads the face PNGs this test writes
    version, items = queue_with_a_model()
    result = overlays_precompute_task.apply_async((), queue=queue).get(timeout=300)
    assert result == {"items": 3, "predicted": 3, "overlays": 6}
    assert Explanation.objects.filter(model_version=version).count() == 6
    assert all(Path(media_root, e.overlay.name).is_file() for e in Explanation.objects.all())
