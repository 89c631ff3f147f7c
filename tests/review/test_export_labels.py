"""``manage.py export_labels``: every face's labels and every vote, operator side (nothing blind)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from django.core.management import call_command

from apps.accounts.roles import Role
from apps.review.choices import NOT_A_FACE, UNSURE
from apps.review.models import ReviewItem
from apps.review.services import review_item_reopen, review_vote_cast
from tests.accounts.factories import UserFactory
from tests.faces.factories import DatasetFactory, FaceImageFactory

from .factories import leased_to

pytestmark = pytest.mark.django_db


def _vote(item: ReviewItem, user, choice: int) -> None:
    review_vote_cast(user=user, item_id=leased_to(item, user).pk, choice=choice)


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _export(directory: Path) -> str:
    out = io.StringIO()
    call_command("export_labels", "--output", str(directory), stdout=out)
    return out.getvalue()


def test_labels_csv_has_every_face_of_every_dataset(tmp_path):
    fer = [FaceImageFactory(source_row=row, original_label=label, split=split)
           for row, (label, split) in enumerate([(0, "Training"), (3, "PublicTest"), (6, "PrivateTest")])]
    fer[1].current_label, fer[2].excluded = 5, True
    fer[1].save()
    fer[2].save()
    folder = FaceImageFactory(dataset=DatasetFactory(name="photos"), source_row=None, source_name="=HYPERLINK(x)",
                              original_label=None, current_label=None)
    text = _export(tmp_path / "out")
    rows = _read(tmp_path / "out" / "labels.csv")
    assert [(r["face_id"], r["dataset"], r["split"], r["source_row"], r["source_name"], r["original_label"],
             r["current_label"], r["excluded"]) for r in rows] == [
        (str(fer[0].pk), "fer2013", "Training", "0", "", "0", "0", "0"),
        (str(fer[1].pk), "fer2013", "PublicTest", "1", "", "3", "5", "0"),      # relabelled: original kept
        (str(fer[2].pk), "fer2013", "PrivateTest", "2", "", "6", "6", "1"),     # "not a face" is kept, flagged
        (str(folder.pk), "photos", "Training", "", "'=HYPERLINK(x)", "", "", "0"),  # user text escaped
    ]
    assert rows[0]["sha256"] == fer[0].pixels_id
    assert "4 faces" in text and "0 votes" in text


def test_votes_csv_has_every_vote_of_every_round_unblinded(tmp_path, admin_user):
    reviewers = [UserFactory(username=name, roles=[Role.REVIEWER]) for name in ("ann", "@bob", "cy")]
    faces = [FaceImageFactory(source_row=row, original_label=0) for row in (10, 11)]
    settled = ReviewItem.objects.create(face=faces[0])
    _vote(settled, reviewers[0], 4)
    _vote(settled, reviewers[1], 4)              # quorum: round 1 settles as sad
    review_item_reopen(admin=admin_user, item_id=settled.pk)
    _vote(settled, reviewers[2], NOT_A_FACE)     # round 2, still open
    pending = ReviewItem.objects.create(face=faces[1])
    _vote(pending, reviewers[0], UNSURE)         # a vote a blind export would hide from others
    text = _export(tmp_path)
    rows = _read(tmp_path / "votes.csv")
    assert [(r["face_id"], r["source_row"], r["item_id"], r["round"], r["item_round"], r["reviewer"], r["choice"],
             r["choice_name"]) for r in rows] == [
        (str(faces[0].pk), "10", str(settled.pk), "1", "2", "ann", "4", "sad"),
        (str(faces[0].pk), "10", str(settled.pk), "1", "2", "'@bob", "4", "sad"),
        (str(faces[0].pk), "10", str(settled.pk), "2", "2", "cy", str(NOT_A_FACE), "not a face"),
        (str(faces[1].pk), "11", str(pending.pk), "1", "1", "ann", str(UNSURE), "unsure"),
    ]
    assert {r["reviewer_id"] for r in rows} == {str(u.pk) for u in reviewers}
    assert all(r["dataset"] == "fer2013" and r["gold"] == "0" and r["created_at"] for r in rows)
    assert "4 votes" in text
    # labels.csv reflects the settled round: the face is sad now, its original label untouched.
    [label_row] = [r for r in _read(tmp_path / "labels.csv") if r["face_id"] == str(faces[0].pk)]
    assert (label_row["original_label"], label_row["current_label"]) == ("0", "4")


def test_queue_csv_lists_every_item_in_the_order_the_queue_serves_it(tmp_path, admin_user):
    reviewers = [UserFactory(username=name, roles=[Role.REVIEWER]) for name in ("ann", "bob")]
    faces = [FaceImageFactory(source_row=row, original_label=0) for row in (20, 21, 22, 23)]
    items = [ReviewItem.objects.create(face=faces[0], priority=0.5, suggested_label=3, suggested_probability=0.9),
             ReviewItem.objects.create(face=faces[1], priority=0.1, suggested_label=4, suggested_probability=0.8),
             ReviewItem.objects.create(face=faces[2], priority=0.5),   # a tie: the older item first
             ReviewItem.objects.create(face=faces[3], priority=0.3, is_gold=True, gold_label=0)]
    _vote(items[1], reviewers[0], 4)
    _vote(items[1], reviewers[1], 4)            # settled: it keeps its place
    text = _export(tmp_path)
    rows = _read(tmp_path / "queue.csv")
    assert [(r["position"], r["item_id"], r["source_row"], r["priority"], r["status"], r["gold"], r["settled_label"])
            for r in rows] == [
        ("1", str(items[1].pk), "21", "0.1", "settled", "0", "4"),
        ("2", str(items[3].pk), "23", "0.3", "open", "1", ""),
        ("3", str(items[0].pk), "20", "0.5", "open", "0", ""),
        ("4", str(items[2].pk), "22", "0.5", "open", "0", ""),
    ]
    assert (rows[0]["original_label"], rows[0]["current_label"], rows[0]["suggested_label"]) == ("0", "4", "4")
    assert rows[2]["suggested_probability"] == "0.9" and rows[3]["suggested_label"] == ""
    assert "4 review items" in text

