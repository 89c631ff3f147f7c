"""The gallery's selection as a ZIP of overlays with a CSV of predictions."""

from __future__ import annotations

import csv
import io
import zipfile

import pytest

pytestmark = pytest.mark.django_db


def test_zip_holds_the_filtered_faces(client, researcher, gallery_data):
    client.force_login(researcher)
    response = client.get("/gallery/export.zip", {"split": "PublicTest", "correct": "false"})
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    rows = list(csv.DictReader(io.StringIO(archive.read("predictions.csv").decode())))
    expected = gallery_data.ids(lambda f, p: f.split == "PublicTest" and p.predicted_label != f.current_label)
    assert {int(r["face_id"]) for r in rows} == expected and expected
    for row in rows:
        assert row["correct"] == "0" and row["overlay"].startswith("overlays/")
        assert archive.read(row["overlay"]).startswith(b"\x89PNG")
        assert abs(sum(float(row[f"p_{c}"]) for c in ("angry", "disgust", "fear", "happy", "sad", "surprise",
                                                      "neutral")) - 1) < 1e-3


def test_face_without_overlay_has_an_empty_overlay_column(client, researcher, gallery_data):
    client.force_login(researcher)
    response = client.get("/gallery/export.zip", {"split": "Training"})
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    rows = {int(r["face_id"]): r for r in csv.DictReader(io.StringIO(archive.read("predictions.csv").decode()))}
    assert rows[gallery_data.unexplained.pk]["overlay"] == ""
    assert client.get("/gallery/export.zip", {"true_label": 42}).status_code == 400
