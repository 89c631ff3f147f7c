from __future__ import annotations

import csv
import io

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from apps.faces.models import FaceImage
from apps.faces.services import FaceRecord, FaceWriter, dataset_get_or_create
from apps.review.choices import NOT_A_FACE
from apps.review.models import ReviewItem
from apps.review.services import review_vote_cast

pytestmark = pytest.mark.django_db


def _faces() -> list[FaceImage]:
    records = [FaceRecord(raw=bytes([(i * 37 + j) % 256 for j in range(2304)]), split=split, label=label,
                          source_row=i)
               for i, (split, label) in enumerate([("Training", 0), ("Training", 3), ("PublicTest", 4),
                                                   ("PrivateTest", 6), ("Training", 2)])]
    writer = FaceWriter(dataset_get_or_create(name="fer2013"))
    with writer.scope():
        writer.write(records)
    return list(FaceImage.objects.order_by("source_row"))


def _settle(face: FaceImage, choice: int, reviewers) -> None:
    item = ReviewItem.objects.create(face=face)
    for reviewer in reviewers[:2]:
        review_vote_cast(user=reviewer, item_id=item.pk, choice=choice)


def test_kaggle_export_imports_back_with_the_corrected_labels(reviewers, researcher, tmp_path):
    faces = _faces()
    _settle(faces[0], 5, reviewers)           # angry -> surprise
    _settle(faces[2], 1, reviewers)           # PublicTest sad -> disgust
    _settle(faces[4], NOT_A_FACE, reviewers)  # dropped from the export
    api = APIClient()
    api.force_authenticate(researcher)
    response = api.get("/api/review/export/kaggle.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["emotion"], r["Usage"]) for r in rows] == [("5", "Training"), ("3", "Training"), ("1", "PublicTest"),
                                                          ("6", "PrivateTest")]
    path = tmp_path / "corrected.csv"
    path.write_text(text)
    call_command("import_fer2013", str(path), "--dataset", "corrected", stdout=io.StringIO())
    imported = list(FaceImage.objects.filter(dataset__name="corrected").order_by("source_row"))
    assert [(f.original_label, f.split) for f in imported] == [(5, "Training"), (3, "Training"), (1, "PublicTest"),
                                                               (6, "PrivateTest")]
    # Same pixels: the imported faces are the exported ones (stored once, linked as duplicates).
    assert [f.pixels_id for f in imported] == [faces[i].pixels_id for i in (0, 1, 2, 3)]
    # Accept: text/csv works too.
    assert api.get("/api/review/export/kaggle.csv", HTTP_ACCEPT="text/csv").status_code == 200


def test_history_export_lists_every_change(reviewers, admin_user):
    faces = _faces()
    _settle(faces[1], 4, reviewers)
    api = APIClient()
    api.force_authenticate(admin_user)
    text = b"".join(api.get("/api/review/export/history.csv").streaming_content).decode()
    (row,) = list(csv.DictReader(io.StringIO(text)))
    assert (row["source_row"], row["original_label"], row["old_label"], row["new_label"], row["kind"]) == (
        "1", "3", "3", "4", "quorum")
    assert row["votes"] == "reviewer0:4;reviewer1:4" and row["dataset"] == "fer2013"
