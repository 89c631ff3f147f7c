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



def csv_rows(response) -> list[dict[str, str]]:
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    return list(csv.DictReader(io.StringIO(archive.read("predictions.csv").decode(), newline="")))

INJECTIONS = ["=HYPERLINK(\"http://evil.example\",\"x\")", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)",
              "\tlooks-blank", "\rnew-line"]


@pytest.mark.parametrize("value", INJECTIONS, ids=["equals", "plus", "minus", "at", "tab", "cr"])
def test_text_from_outside_is_made_inert_for_spreadsheets(client, researcher, gallery_data, value):
    """Dataset names and imported file paths come from outside; a cell starting like a formula gets a leading '."""
    from apps.faces.models import Dataset, FaceImage

    face = next(f for f in gallery_data.faces if f.pk in gallery_data.ids(lambda f, p: f.split == "PublicTest"))
    FaceImage.objects.filter(pk=face.pk).update(dataset=Dataset.objects.create(name=value + " set"),
                                                source_name=value + ".png")
    client.force_login(researcher)
    response = client.get("/gallery/export.zip", {"split": "PublicTest"})
    rows = {int(r["face_id"]): r for r in csv_rows(response)}
    assert rows[face.pk]["dataset_name"] == "'" + value + " set"
    assert rows[face.pk]["source_name"] == "'" + value + ".png"
    others = [r for pk, r in rows.items() if pk != face.pk]
    assert others and all(not r["dataset_name"].startswith("'") for r in others)


def test_numbers_are_never_escaped(client, researcher, gallery_data):
    from apps.inference.models import Prediction

    # A negative number is text that starts with "-": it must stay a number.
    Prediction.objects.filter(model_version=gallery_data.version).update(confidence=-0.25)
    client.force_login(researcher)
    response = client.get("/gallery/export.zip", {"split": "PublicTest"})
    rows = csv_rows(response)
    assert rows and all(r["confidence"] == "-0.250000" for r in rows)
    for row in rows:
        int(row["face_id"]), int(row["dataset"]), int(row["source_row"])
        [float(row[f"p_{c}"]) for c in ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")]


def test_csv_text_prefixes_only_formula_starts():
    from apps.gallery.exports import csv_text

    assert [csv_text(v) for v in INJECTIONS] == ["'" + v for v in INJECTIONS]
    assert [csv_text(v) for v in ("fer2013", "a=b", "", "train/happy/1.png", "'quoted")] == [
        "fer2013", "a=b", "", "train/happy/1.png", "'quoted"]
