from __future__ import annotations

import csv
import io

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from apps.accounts.roles import Role
from apps.faces.models import FaceImage
from apps.faces.services import FaceRecord, FaceWriter, dataset_get_or_create
from apps.review.choices import NOT_A_FACE
from apps.review.models import ReviewItem
from apps.review.services import review_vote_cast
from tests.accounts.factories import UserFactory
from tests.api_errors import error_body, field_errors

from .factories import leased_to

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
        review_vote_cast(user=reviewer, item_id=leased_to(item, reviewer).pk, choice=choice)


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
    # A researcher's export: Training and PublicTest only (PrivateTest is for admins, when the gallery shows it).
    assert [(r["emotion"], r["Usage"]) for r in rows] == [("5", "Training"), ("3", "Training"), ("1", "PublicTest")]
    path = tmp_path / "corrected.csv"
    path.write_text(text)
    call_command("import_fer2013", str(path), "--dataset", "corrected", stdout=io.StringIO())
    imported = list(FaceImage.objects.filter(dataset__name="corrected").order_by("source_row"))
    assert [(f.original_label, f.split) for f in imported] == [(5, "Training"), (3, "Training"), (1, "PublicTest")]
    # Same pixels: the imported faces are the exported ones (stored once, linked as duplicates).
    assert [f.pixels_id for f in imported] == [faces[i].pixels_id for i in (0, 1, 2)]
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


# --- who gets which rows, and what a cell may contain ---------------------------------------------------------------

def _csv(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_a_dataset_name_with_a_newline_is_a_400_naming_dataset(researcher):
    api = APIClient()
    api.force_authenticate(researcher)
    response = api.get("/api/review/export/kaggle.csv", {"dataset": "fer2013\r\nX-Injected: 1"})
    assert response.status_code == 400
    assert error_body(response)["code"] == "invalid" and "dataset" in field_errors(response)


def test_private_test_is_not_in_a_researchers_export(reviewers, researcher, admin_user, settings):
    faces = _faces()
    _settle(faces[3], 1, reviewers)  # the PrivateTest face
    settings.GALLERY_SHOW_PRIVATE_TEST = True  # even when the gallery shows it to admins
    for user, splits in [(researcher, {"Training", "PublicTest"}),
                         (admin_user, {"Training", "PublicTest", "PrivateTest"})]:
        api = APIClient()
        api.force_authenticate(user)
        assert {r["Usage"] for r in _csv(api.get("/api/review/export/kaggle.csv"))} == splits
        history = _csv(api.get("/api/review/export/history.csv"))
        assert [r["split"] for r in history] == (["PrivateTest"] if "PrivateTest" in splits else [])
    settings.GALLERY_SHOW_PRIVATE_TEST = False
    api = APIClient()
    api.force_authenticate(admin_user)
    assert {r["Usage"] for r in _csv(api.get("/api/review/export/kaggle.csv"))} == {"Training", "PublicTest"}
    assert _csv(api.get("/api/review/export/history.csv")) == []


def test_csv_cells_cannot_start_a_formula(admin_user, settings):
    settings.GALLERY_SHOW_PRIVATE_TEST = False
    faces = _faces()
    dataset = faces[0].dataset
    dataset.name = "-evil"
    dataset.save()
    voters = [UserFactory(username=name, roles=[Role.REVIEWER]) for name in ("=HYPERLINK(x)", "@SUM(1)")]
    _settle(faces[1], 4, voters)
    api = APIClient()
    api.force_authenticate(admin_user)
    (row,) = _csv(api.get("/api/review/export/history.csv"))
    assert row["dataset"] == "'-evil" and row["votes"] == "'=HYPERLINK(x):4;@SUM(1):4"
    assert (row["face_id"], row["old_label"], row["new_label"]) == (str(faces[1].pk), "3", "4")  # numbers stay
    kaggle = _csv(api.get("/api/review/export/kaggle.csv", {"dataset": "-evil"}))
    assert [r["emotion"] for r in kaggle] == ["0", "4", "4", "2"] and kaggle[0]["pixels"].split()[0] == "0"


def test_history_export_shows_a_non_admin_no_votes_of_rounds_they_did_not_vote_in(reviewers, admin_user):
    faces = _faces()
    _settle(faces[1], 4, reviewers)
    both = UserFactory(username="rev-and-research", roles=[Role.REVIEWER, Role.RESEARCHER])
    api = APIClient()
    api.force_authenticate(both)
    (row,) = _csv(api.get("/api/review/export/history.csv"))
    assert (row["kind"], row["new_label"], row["votes"]) == ("quorum", "4", "")
    api.force_authenticate(admin_user)
    (row,) = _csv(api.get("/api/review/export/history.csv"))
    assert row["votes"] == "reviewer0:4;reviewer1:4"
