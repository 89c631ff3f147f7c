"""The data map job end to end: real faces, the tiny checkpoint, UMAP and t-SNE, stored points, progress, failures."""

from __future__ import annotations

import numpy as np
import pytest

from apps.core.models import WorkStatus
from apps.datamap.models import DataMap, DataMapPoint
from apps.datamap.selectors import data_map_points
from apps.datamap.services import DataMapParamError, data_map_execute, data_map_start
from apps.datamap.tasks import data_map_task
from apps.faces.models import FaceImage, Split
from apps.faces.selectors import face_pixels
from apps.inference import runtime
from ml.evaluate import predict_proba

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("method", ["umap", "tsne"])
def test_map_stores_one_point_per_face_with_its_prediction(map_data, researcher, method,
                                                           django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        data_map, created = data_map_start(version=map_data.version, split=Split.PUBLIC_TEST, method=method,
                                           user=researcher)
    assert created and data_map.status == WorkStatus.QUEUED and len(callbacks) == 1  # sent after commit
    again, created_again = data_map_start(version=map_data.version, split=Split.PUBLIC_TEST, method=method,
                                          user=researcher)
    assert again.pk == data_map.pk and not created_again  # one unfinished map per (version, split, method)

    assert data_map_task(data_map.pk)["status"] == WorkStatus.SUCCEEDED
    assert data_map_task(data_map.pk)["status"] == "not claimed"  # a second delivery does nothing
    data_map.refresh_from_db()
    faces = sorted(map_data.public, key=lambda f: f.pk)
    assert data_map.face_count == len(faces) and data_map.attempts == 1
    assert data_map.progress["stage"] == "storing" and data_map.progress["total"] == len(faces)
    points = list(DataMapPoint.objects.filter(data_map=data_map).order_by("face_id"))
    assert [p.face_id for p in points] == [f.pk for f in faces]
    probs = predict_proba(runtime.loaded(map_data.version).model, face_pixels([f.pk for f in faces]))
    assert [p.predicted_label for p in points] == probs.argmax(1).tolist()
    assert np.allclose([p.confidence for p in points], probs.max(1), atol=1e-5)
    assert [p.label for p in points] == [FaceImage.objects.get(pk=f.pk).current_label for f in faces]
    xy = np.array([(p.x, p.y) for p in points])
    assert xy.min() >= 0 and xy.max() <= 1 and np.isclose(xy.max(0).max(), 1)
    assert len({(round(x, 6), round(y, 6)) for x, y in xy}) > len(faces) // 2  # a layout, not one spot

    # Recomputing replaces the older map once the new one succeeds.
    newer, _ = data_map_start(version=map_data.version, split=Split.PUBLIC_TEST, method=method, user=researcher)
    data_map_execute(map_id=newer.pk)
    assert list(DataMap.objects.values_list("pk", flat=True)) == [newer.pk]


def test_points_read_label_quality_and_review_state_live(map_data, researcher):
    data_map, _ = data_map_start(version=map_data.version, split=Split.TRAINING, method="umap", user=researcher)
    data_map_execute(map_id=data_map.pk)
    data_map.refresh_from_db()
    points = data_map_points(data_map=data_map)
    training = sorted(map_data.training, key=lambda f: f.pk)
    assert points["ids"] == [f.pk for f in training]
    by_id = dict(zip(points["ids"], range(len(points["ids"])), strict=True))
    first, second = map_data.training[0], map_data.training[1]
    # The latest successful scoring run's quality, not the older run's 0.99.
    assert points["quality"][by_id[first.pk]] == 0.0 and points["quality"][by_id[map_data.training[3].pk]] == 0.3
    assert points["review"][by_id[first.pk]] == "settled" and points["review"][by_id[second.pk]] == "open"
    assert points["review"].count(None) == len(training) - 2
    assert points["image"][by_id[first.pk]] == first.pixels.png.url
    # Live: a review item settled after the map was made shows at once.
    from apps.review.models import ReviewItem

    ReviewItem.objects.filter(face=second).update(status=ReviewItem.Status.DISPUTED)
    assert data_map_points(data_map=data_map)["review"][by_id[second.pk]] == "disputed"


def test_bad_requests_and_failures(map_data, researcher, admin_user, settings):
    with pytest.raises(DataMapParamError, match="method"):
        data_map_start(version=map_data.version, split=Split.PUBLIC_TEST, method="pca", user=researcher)
    with pytest.raises(DataMapParamError, match="split"):  # PrivateTest is hidden from researchers
        data_map_start(version=map_data.version, split=Split.PRIVATE_TEST, method="umap", user=researcher)
    with pytest.raises(DataMapParamError, match="split"):  # and from admins until it is shown
        data_map_start(version=map_data.version, split=Split.PRIVATE_TEST, method="umap", user=admin_user)
    settings.GALLERY_SHOW_PRIVATE_TEST = True
    data_map, _ = data_map_start(version=map_data.version, split=Split.PRIVATE_TEST, method="umap", user=admin_user)
    FaceImage.objects.filter(split=Split.PRIVATE_TEST).exclude(pk=map_data.private[0].pk).delete()
    assert data_map_task(data_map.pk)["status"] == WorkStatus.FAILED
    data_map.refresh_from_db()
    assert "a map needs at least 5" in data_map.error and not DataMapPoint.objects.exists()
