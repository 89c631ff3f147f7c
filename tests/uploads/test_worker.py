"""Uploads through a real Celery worker on Redis, and the shared real photos through the face detector."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.storage import default_storage

from apps.inference.models import Explanation, Prediction
from apps.uploads.models import Upload
from tests.helpers import wait_until

from . import samples

URL = "/api/uploads/"
PHOTOS = Path(__file__).resolve().parents[3] / "shared" / "data" / "photos"


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_upload_goes_through_a_real_worker_to_a_stored_result_and_heatmap(
        shared_media_root, active_version, client_for, reviewer):
    client = client_for(reviewer)
    response = client.post(URL + "?wait=60&no_face=use_whole",
                           {"images": [samples.upload_file(samples.jpeg(640, 480), "photo.jpg")]}, format="multipart")
    assert response.status_code == 201
    (upload,) = response.json()["uploads"]
    assert upload["status"] == "done", upload
    assert upload["predicted_label"] in upload["probabilities"]
    prediction = Prediction.objects.get(face_id=upload["face_id"])
    assert prediction.model_version == active_version
    explanation = Explanation.objects.get(face_id=upload["face_id"], method="gradcam")
    assert explanation.target_label == prediction.predicted_label and len(explanation.raw_map) == 48 * 48
    assert default_storage.exists(explanation.overlay.name)  # written by the worker, seen here
    assert upload["heatmaps"][0]["url"].endswith(explanation.overlay.name)
    # The worker recorded the state on the row (the GET only derived it) when the chunk ended; the chunk is a row too.
    row = Upload.objects.get(pk=upload["id"])

    def recorded() -> bool:
        row.refresh_from_db()
        return row.status == "done"

    wait_until(recorded, timeout=30, what=lambda: f"upload {row.pk} stayed {row.status}")
    assert (row.status, row.model_version_id) == ("done", active_version.pk) and row.finished_at is not None
    assert (row.chunk.status, row.chunk.attempts, row.chunk.face_ids) == ("succeeded", 1, [row.face_id])


@pytest.mark.django_db
@pytest.mark.skipif(not PHOTOS.is_dir(), reason=f"the shared photos are not here ({PHOTOS})")
def test_the_shared_photos_each_find_a_face(client_for, reviewer):
    photos = sorted(p for p in PHOTOS.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    assert photos, f"no photos in {PHOTOS}"
    files = [samples.upload_file(p.read_bytes(), p.name, "application/octet-stream") for p in photos]
    response = client_for(reviewer).post(URL, {"images": files}, format="multipart")
    assert response.status_code == 201, response.content
    for upload in response.json()["uploads"]:
        assert upload["face_found"], f"no face found in {upload['original_name']}"
        assert upload["status"] == "queued"
        box = upload["face_box"]
        assert 0 <= box["x"] and box["x"] + box["w"] <= upload["width"] + 1
        assert 0 <= box["y"] and box["y"] + box["h"] <= upload["height"] + 1
        assert box["w"] >= 20 and box["h"] >= 20
