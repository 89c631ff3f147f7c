"""The 0003 backfill: every upload made with one face gets that face as its face 0."""

from __future__ import annotations

import pytest

from tests.helpers import migrate_to, migrate_to_latest

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE, AFTER = [("uploads", "0002_upload_chunk")], [("uploads", "0003_upload_faces")]


@pytest.fixture(autouse=True)
def back_to_the_latest_schema():
    yield
    migrate_to_latest()


def test_each_upload_face_becomes_face_0(reviewer):
    from apps.faces.models import Split
    from tests.faces.factories import FaceImageFactory

    face = FaceImageFactory(split=Split.UPLOAD, original_label=None)
    old = migrate_to(BEFORE)
    try:
        Upload = old.get_model("uploads", "Upload")
        common = {"user_id": reviewer.pk, "content_type": "image/jpeg", "size": 1, "width": 640, "height": 400}
        with_face = Upload.objects.create(face_id=face.pk, face_found=True, face_box={"x": 1, "y": 2, "w": 3, "h": 4},
                                          crop_box=[0, 0, 5, 5], status="done", **common)
        Upload.objects.create(face_id=None, status="no_face", **common)
    finally:
        new = migrate_to(AFTER)
    UploadFace = new.get_model("uploads", "UploadFace")
    assert list(UploadFace.objects.values_list("upload_id", "index", "face_id", "box", "crop_box")) == [
        (with_face.pk, 0, face.pk, {"x": 1, "y": 2, "w": 3, "h": 4}, [0, 0, 5, 5])]
