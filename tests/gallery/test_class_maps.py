"""Class-average Grad-CAM maps: the mean of the stored raw maps per class and per confusion cell."""

from __future__ import annotations

import numpy as np
import pytest

from apps.faces.models import Split
from apps.gallery.selectors import class_maps
from apps.inference.models import MAP_SIZE, Explanation

pytestmark = pytest.mark.django_db


def _raw(row: Explanation) -> np.ndarray:
    return np.frombuffer(bytes(row.raw_map), dtype=np.uint8).reshape(MAP_SIZE, MAP_SIZE).astype(np.float64)


def test_means_match_the_stored_maps(gallery_data):
    version = gallery_data.version
    public = [f for f in gallery_data.faces if f.split == Split.PUBLIC_TEST]
    maps = class_maps(version=version, method="gradcam", by="predicted")
    by_pred: dict[int, list[np.ndarray]] = {}
    by_cell: dict[tuple[int, int], list[np.ndarray]] = {}
    for face in public:
        pred = gallery_data.predictions[face.pk].predicted_label
        cam = _raw(Explanation.objects.get(face=face, model_version=version, method="gradcam", target_label=pred))
        by_pred.setdefault(pred, []).append(cam)
        by_cell.setdefault((face.current_label, pred), []).append(cam)
    assert set(maps.keys()) == set(by_pred) | set(by_cell)
    for key, cams in {**by_pred, **by_cell}.items():
        assert maps.count(key) == len(cams)
        np.testing.assert_allclose(maps.mean(key), np.mean(cams, axis=0) / 255.0, atol=1e-6)

    maps = class_maps(version=version, method="gradcam", by="true")
    for label in range(7):
        cams = [_raw(Explanation.objects.get(face=f, model_version=version, method="gradcam",
                                             target_label=f.current_label)) for f in public if f.current_label == label]
        assert maps.count(label) == len(cams)
        if cams:
            np.testing.assert_allclose(maps.mean(label), np.mean(cams, axis=0) / 255.0, atol=1e-6)
        else:
            assert maps.mean(label) is None
    assert class_maps(version=version, method="layercam", by="true").keys() == []


def test_class_map_pngs(client, researcher, gallery_data):
    client.force_login(researcher)
    url = f"/gallery/models/{gallery_data.version.pk}/class-maps.png"
    for query in ({"by": "predicted"}, {"by": "true", "method": "layercam"}, {"true": 2, "predicted": 4}):
        response = client.get(url, query)
        assert response.status_code == 200 and response.content.startswith(b"\x89PNG"), query
    # Bad parameters are a 400, as the class-maps API answers them (one parser for both).
    assert client.get(url, {"by": "sideways"}).status_code == 400
    assert client.get(url, {"true": 9, "predicted": 1}).status_code == 400


def test_class_maps_api(client, researcher, reviewer, gallery_data):
    url = f"/api/gallery/models/{gallery_data.version.pk}/class-maps"
    client.force_login(reviewer)
    assert client.get(url).status_code == 403
    client.force_login(researcher)
    body = client.get(url, {"by": "predicted"}).json()
    maps = class_maps(version=gallery_data.version, method="gradcam", by="predicted")
    for label, name in enumerate(("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")):
        entry = body["classes"][name]
        assert entry["count"] == maps.count(label)
        if entry["count"]:
            np.testing.assert_allclose(np.array(entry["mean"]), maps.mean(label), atol=1e-4)
        else:
            assert entry["mean"] is None
    assert sum(c["count"] for c in body["cells"]) == sum(e["count"] for e in body["classes"].values()) == 10
    assert client.get(url, {"by": "true", "method": "layercam"}).json()["classes"]["happy"]["count"] == 0
    assert client.get(url, {"by": "x"}).status_code == 400
    assert client.get(url, {"method": "x"}).status_code == 400
    assert client.get(url, {"split": Split.PRIVATE_TEST}).status_code == 400
