"""FER+ votes in the loop: disagreement and majority rules, the scoring run's FER+ report, the majority accuracy of a
model version, and the FER+ export that imports back."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db.models import F

from apps.accounts.roles import Role
from apps.faces.importers.ferplus import ferplus_import
from apps.faces.labels import FERPLUS_COLUMNS
from apps.faces.models import Dataset, FaceImage
from apps.faces.services import FaceRecord, FaceWriter, dataset_get_or_create
from apps.inference.models import ModelVersion, Prediction
from apps.review.choices import NOT_A_FACE, UNSURE
from apps.review.exports import ferplus_csv_rows, kaggle_csv_rows
from apps.review.ferplus import (
    ferplus_disagrees,
    ferplus_majority,
    ferplus_majority_accuracy,
    scoring_ferplus_report,
)
from apps.review.models import LabelScore, ReviewItem, ScoringRun, Vote
from apps.review.selectors import BlindReview, blind_review_for
from tests.accounts.factories import UserFactory
from tests.faces.factories import FacePixelsFactory

# Written out here rather than taken from the code under test: class index -> FER+ column name.
FERPLUS_NAME = {0: "anger", 1: "disgust", 2: "fear", 3: "happiness", 4: "sadness", 5: "surprise", 6: "neutral"}
HAPPY, SAD, FEAR, NEUTRAL = 3, 4, 2, 6


def votes(**counts: int) -> list[int]:
    """10 FER+ counts from column names: ``votes(happiness=7, NF=3)``."""
    row = [0] * len(FERPLUS_COLUMNS)
    for name, n in counts.items():
        row[FERPLUS_COLUMNS.index(name)] = n
    return row


# --- the rules ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("row", "label", "expected"), [
    (votes(sadness=6, happiness=4), HAPPY, True),    # another emotion at 6 of 10
    (votes(sadness=5, happiness=5), HAPPY, False),   # 5 is not enough
    (votes(happiness=10), HAPPY, False),             # the label's own votes
    (votes(happiness=6, sadness=4), SAD, True),      # the same row against another label
    (votes(NF=5, happiness=5), HAPPY, True),         # not a face at 5 of 10
    (votes(NF=4, happiness=6), HAPPY, False),
    (votes(contempt=10), HAPPY, False),              # contempt has no FER-2013 class: not "another emotion"
    (votes(unknown=6, happiness=4), HAPPY, False),
    (votes(neutral=7, contempt=3), NEUTRAL, False),
    (votes(anger=6, happiness=4), 0, False),         # anger is class 0 (angry)
    (votes(anger=6, happiness=4), HAPPY, True),
])
def test_disagreement_on_ten_votes(row, label, expected):
    assert sum(row) == 10
    assert ferplus_disagrees(row, label) is expected


@pytest.mark.parametrize(("row", "expected"), [
    (votes(sadness=12, happiness=8), True),   # 20 votes: 12 is 6 of 10
    (votes(sadness=11, happiness=9), False),
    (votes(NF=10, happiness=10), True),       # 10 of 20 is 5 of 10
    (votes(NF=9, happiness=11), False),
    (votes(sadness=3, happiness=2), True),    # 5 votes: 3 reaches 6/10 of 5
    (votes(sadness=2, happiness=3), False),
    (votes(NF=3, happiness=2), True),         # 3 >= 2.5
    (votes(NF=2, happiness=3), False),
    (votes(), False),                         # no votes: nothing to disagree with
])
def test_thresholds_scale_with_the_rows_total(row, expected):
    assert ferplus_disagrees(row, HAPPY) is expected


@pytest.mark.parametrize(("row", "expected"), [
    (votes(happiness=7, neutral=3), HAPPY),
    (votes(neutral=4, contempt=3, unknown=3), NEUTRAL),
    (votes(neutral=4, happiness=4, fear=2), None),  # tied
    (votes(neutral=4, contempt=4, fear=2), None),   # tied with a column that has no class
    (votes(contempt=5, neutral=4, fear=1), None),   # contempt on top
    (votes(unknown=5, neutral=4, fear=1), None),
    (votes(NF=6, fear=4), None),
    (votes(), None),
    (votes(anger=3, disgust=2), 0),
])
def test_majority_is_a_single_emotion_on_top(row, expected):
    assert ferplus_majority(row) == expected


# --- the scoring run's report ---------------------------------------------------------------------------------------

def _scored_faces(run: ScoringRun, rows: list[tuple[float, list[int] | None]], *, given: int = HAPPY,
                  first_row: int = 0) -> list[FaceImage]:
    """One Training face per (quality, votes), all sharing one stored image, with a score in ``run``. The current
    label differs from the scored one, so that a report judging the wrong label is caught."""
    dataset = dataset_get_or_create(name="fer2013")
    pixels = FacePixelsFactory()
    faces = FaceImage.objects.bulk_create([
        FaceImage(dataset=dataset, pixels=pixels, split="Training", original_label=given, current_label=SAD,
                  source_row=first_row + i, ferplus_votes=v) for i, (_, v) in enumerate(rows)])
    LabelScore.objects.bulk_create([
        LabelScore(run=run, face=face, given_label=given, quality=q, suggested_label=given,
                   suggested_probability=0.5, probabilities=[1 / 7] * 7)
        for face, (q, _) in zip(faces, rows, strict=True)])
    return faces


@pytest.mark.django_db
def test_scoring_report_ranks_by_quality_against_ferplus_disagreement():
    run = ScoringRun.objects.create(status=ScoringRun.Status.SUCCEEDED)
    agree, against, not_a_face = votes(happiness=9, sadness=1), votes(sadness=8, happiness=2), votes(NF=5, fear=5)
    rows = []
    for rank in range(1000):
        if rank < 100:
            row = against if rank % 2 else not_a_face  # the 100 lowest qualities all disagree
        elif rank < 500:
            row = against if (rank - 100) % 4 == 3 else agree  # then one in four: ranks 104, 108, ..., 500 (1-based)
        else:
            row = agree
        rows.append((rank / 1000, row))
    rows.reverse()  # stored out of order: the report sorts
    rows += [(-1.0, None), (-0.5, votes())]  # no votes, or an all-zero row: left out although ranked first
    _scored_faces(run, rows)
    other = ScoringRun.objects.create(status=ScoringRun.Status.SUCCEEDED)  # another run's scores never count
    _scored_faces(other, [(-2.0, against)] * 5, first_row=5000)

    report = scoring_ferplus_report(run=run)

    assert report["faces_with_votes"] == 1000 and report["disagreeing"] == 200
    assert report["disagreeing_share"] == pytest.approx(0.2)
    assert report["precision_at_100"] == pytest.approx(1.0)
    assert report["precision_at_500"] == pytest.approx(0.4)
    assert report["precision_at_1000"] == pytest.approx(0.2)
    # Average precision by hand: the mean, over the disagreeing faces, of the precision at each one's rank.
    expected = (100 + sum((100 + j) / (100 + 4 * j) for j in range(1, 101))) / 200
    assert report["average_precision"] == pytest.approx(expected)
    assert json.loads(json.dumps(report)) == report  # stored on the run as JSON


@pytest.mark.django_db
def test_scoring_report_with_few_faces_and_without_votes():
    run = ScoringRun.objects.create(status=ScoringRun.Status.SUCCEEDED)
    assert scoring_ferplus_report(run=run) is None
    _scored_faces(run, [(0.1, None), (0.2, None)])
    assert scoring_ferplus_report(run=run) is None  # scored faces, none with votes
    _scored_faces(run, [(0.3, votes(sadness=7, happiness=3)), (0.4, votes(happiness=10)),
                        (0.5, votes(fear=6, happiness=4))], first_row=10)
    report = scoring_ferplus_report(run=run)
    assert (report["faces_with_votes"], report["disagreeing"]) == (3, 2)
    assert report["precision_at_100"] is None and report["precision_at_1000"] is None  # fewer faces than k
    assert report["average_precision"] == pytest.approx((1 / 1 + 2 / 3) / 2)

    agreeing = ScoringRun.objects.create(status=ScoringRun.Status.SUCCEEDED)
    _scored_faces(agreeing, [(0.1, votes(happiness=10))], first_row=20)
    report = scoring_ferplus_report(run=agreeing)
    assert report["disagreeing"] == 0 and report["average_precision"] is None  # undefined without a positive


# --- a version's accuracy against the FER+ majority -----------------------------------------------------------------

def _majority(cls: int) -> list[int]:
    return votes(**{FERPLUS_NAME[cls]: 7, FERPLUS_NAME[(cls + 1) % 7]: 3})


@pytest.mark.django_db
def test_majority_accuracy_of_stored_predictions():
    version = ModelVersion.objects.create(name="m", arch="fer_vgg", checkpoint="models/m.pt", checkpoint_sha256="0")
    other = ModelVersion.objects.create(name="o", arch="fer_vgg", checkpoint="models/o.pt", checkpoint_sha256="1")
    pixels = FacePixelsFactory()
    dataset = dataset_get_or_create(name="fer2013")
    cases = [  # (split, FER+ votes, predicted class, excluded)
        ("PublicTest", _majority(HAPPY), HAPPY, False),                   # right
        ("PublicTest", _majority(FEAR), FEAR, False),                     # right
        ("PublicTest", _majority(SAD), NEUTRAL, False),                   # wrong
        ("PublicTest", votes(neutral=4, happiness=4, NF=2), HAPPY, False),  # tied: left out
        ("PublicTest", votes(contempt=6, neutral=4), NEUTRAL, False),     # contempt on top: left out
        ("PublicTest", votes(NF=10), HAPPY, False),                       # not a face on top: left out
        ("PublicTest", None, HAPPY, False),                               # no votes: not counted
        ("PublicTest", _majority(SAD), HAPPY, True),                      # reviewers said not a face: not counted
        ("PublicTest", _majority(FEAR), None, False),                     # not predicted: has votes, not scored
        ("Training", _majority(SAD), HAPPY, False),                       # another split
    ]
    for row, (split, v, predicted, excluded) in enumerate(cases):
        face = FaceImage.objects.create(dataset=dataset, pixels=pixels, split=split, original_label=HAPPY,
                                        current_label=HAPPY, source_row=row, ferplus_votes=v, excluded=excluded)
        if predicted is not None:
            probabilities = [0.0] * 7
            probabilities[predicted] = 1.0
            Prediction.objects.create(face=face, model_version=version, probabilities=probabilities,
                                      predicted_label=predicted, confidence=1.0)
            Prediction.objects.create(face=face, model_version=other, probabilities=probabilities,
                                      predicted_label=(predicted + 1) % 7, confidence=1.0)

    result = ferplus_majority_accuracy(version=version)

    assert result == {"split": "PublicTest", "accuracy": pytest.approx(2 / 3), "n": 3, "left_out": 3, "faces": 7}
    assert ferplus_majority_accuracy(version=other)["accuracy"] == pytest.approx(0.0)
    assert ferplus_majority_accuracy(version=version, split="Training")["accuracy"] == pytest.approx(0.0)
    assert ferplus_majority_accuracy(version=version, split="PrivateTest") is None  # no votes there


# --- the FER+ export ------------------------------------------------------------------------------------------------

def _dataset() -> list[FaceImage]:
    """Six faces of "fer2013" as an import makes them, with FER+ votes on some and review votes on two."""
    layout = [("Training", 0), ("Training", 3), ("PublicTest", 4), ("PrivateTest", 6), ("Training", 2),
              ("Training", 5)]
    records = [FaceRecord(raw=bytes([(i * 41 + j) % 256 for j in range(2304)]), split=split, label=label,
                          source_row=i) for i, (split, label) in enumerate(layout)]
    writer = FaceWriter(dataset_get_or_create(name="fer2013"))
    with writer.scope():
        writer.write(records)
    faces = list(FaceImage.objects.order_by("source_row"))
    ferplus = {0: votes(anger=6, neutral=2, sadness=2), 1: votes(NF=10), 2: votes(sadness=9, unknown=1),
               3: votes(neutral=10), 4: votes(NF=4, fear=4, surprise=2)}
    for row, v in ferplus.items():
        FaceImage.objects.filter(pk=faces[row].pk).update(ferplus_votes=v)
    FaceImage.objects.filter(pk=faces[1].pk).update(excluded=True)  # reviewers said "not a face"
    return faces


def _vote(item: ReviewItem, reviewer, choice: int, round_: int | None = None) -> None:
    Vote.objects.create(item=item, reviewer=reviewer, choice=choice, round=round_ or item.round)


def _review_votes(faces: list[FaceImage], reviewers) -> ReviewItem:
    """Face 0: reopened (round 2) with votes in both rounds; face 5: an open item. Returns face 0's item."""
    item = ReviewItem.objects.create(face=faces[0], round=2, status=ReviewItem.Status.REOPENED)
    _vote(item, reviewers[0], HAPPY, round_=1)  # an earlier round: not counted
    _vote(item, reviewers[1], HAPPY, round_=1)
    _vote(item, reviewers[0], SAD)
    _vote(item, reviewers[1], NOT_A_FACE)
    _vote(item, reviewers[2], UNSURE)  # adds nothing
    _vote(ReviewItem.objects.create(face=faces[5]), reviewers[3], FEAR)
    _vote(ReviewItem.objects.create(face=faces[3]), reviewers[3], SAD)  # PrivateTest: not exported to researchers
    return item


def _rows(lines) -> list[dict]:
    return list(csv.DictReader(io.StringIO("".join(lines))))


def _counts(row: dict) -> list[int]:
    return [int(row[name]) for name in FERPLUS_COLUMNS]


ADMIN = BlindReview(is_admin=True, user_id=None)
SPLITS = ["Training", "PublicTest"]


@pytest.mark.django_db
def test_ferplus_export_lines_up_with_the_kaggle_export_and_imports_back(reviewers, tmp_path):
    faces = _dataset()
    _review_votes(faces, reviewers)
    text = "".join(ferplus_csv_rows(dataset="fer2013", splits=SPLITS, blind=ADMIN))
    assert text.splitlines()[0] == ("Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,"
                                    "contempt,unknown,NF")
    rows = _rows([text])
    expected = [  # face 1 is "not a face" and face 3 PrivateTest: neither is in the Kaggle export, nor here
        (faces[0], "Training", "fer0000000.png", votes(anger=6, neutral=2, sadness=3, NF=1)),  # round 2's votes
        (faces[2], "PublicTest", "fer0000001.png", votes(sadness=9, unknown=1)),
        (faces[4], "Training", "fer0000002.png", votes(NF=4, fear=4, surprise=2)),  # NF under half: a face
        (faces[5], "Training", "fer0000003.png", votes(fear=1)),  # no FER+ votes: zeros plus the reviewer's
    ]
    assert [(r["Usage"], r["Image name"], _counts(r)) for r in rows] == [(u, n, v) for _, u, n, v in expected]

    # The Kaggle export of the same caller has the same faces in the same order: import both into a fresh dataset.
    kaggle = tmp_path / "fer2013.csv"
    kaggle.write_text("".join(kaggle_csv_rows(dataset="fer2013", splits=SPLITS)))
    ferplus = tmp_path / "fer2013new.csv"
    ferplus.write_text(text)
    call_command("import_fer2013", str(kaggle), "--dataset", "fresh", stdout=io.StringIO())
    report = ferplus_import(path=ferplus, dataset_name="fresh", strict=True)
    assert (report.updated, report.unmatched, report.bad_count) == (4, 0, 0)
    fresh = list(FaceImage.objects.filter(dataset__name="fresh").order_by("source_row"))
    assert [(f.pixels_id, f.split, f.ferplus_votes) for f in fresh] == [
        (face.pixels_id, usage, v) for face, usage, _, v in expected]


@pytest.mark.django_db
def test_a_row_that_fer_plus_calls_not_a_face_has_no_image_name(reviewers):
    faces = _dataset()
    item = ReviewItem.objects.create(face=faces[4])  # FER+: NF 4 of 10; one reviewer's "not a face" makes it 5 of 11
    _vote(item, reviewers[0], NOT_A_FACE)
    names = [r["Image name"] for r in _rows(ferplus_csv_rows(dataset="fer2013", splits=SPLITS, blind=ADMIN))]
    assert names == ["fer0000000.png", "fer0000001.png", "fer0000002.png", "fer0000003.png"]  # 5/11 < half
    _vote(item, reviewers[1], NOT_A_FACE)  # 6 of 12: half
    names = [r["Image name"] for r in _rows(ferplus_csv_rows(dataset="fer2013", splits=SPLITS, blind=ADMIN))]
    # FER+ numbers only the rows it names: the next name continues the count.
    assert names == ["fer0000000.png", "fer0000001.png", "", "fer0000002.png"]


@pytest.mark.django_db
def test_ferplus_export_shows_review_votes_blind(reviewers, admin_user, settings):
    settings.GALLERY_SHOW_PRIVATE_TEST = True
    faces = _dataset()
    _review_votes(faces, reviewers)
    researcher = UserFactory(username="rob", roles=[Role.RESEARCHER])
    voter = UserFactory(username="both", roles=[Role.REVIEWER, Role.RESEARCHER])
    _vote(ReviewItem.objects.get(face=faces[5]), voter, HAPPY)

    def first_and_last(user, splits=SPLITS) -> list[list[int]]:
        rows = _rows(ferplus_csv_rows(dataset="fer2013", splits=splits, blind=blind_review_for(user=user)))
        return [_counts(rows[0]), _counts(rows[-1])]

    # No vote in those rounds: the imported FER+ counts only.
    assert first_and_last(researcher) == [votes(anger=6, neutral=2, sadness=2), votes()]
    # A vote they may still take back shows nothing yet (blind review) ...
    assert first_and_last(voter) == [votes(anger=6, neutral=2, sadness=2), votes()]
    Vote.objects.update(created_at=F("created_at") - timedelta(days=1))  # ... past the undo window it is final:
    # a final vote in face 5's round shows that round's votes (the other reviewer's fear and their own happy).
    assert first_and_last(voter) == [votes(anger=6, neutral=2, sadness=2), votes(fear=1, happiness=1)]
    # Admins see every round, PrivateTest included when the gallery shows it.
    rows = _rows(ferplus_csv_rows(dataset="fer2013", splits=["Training", "PublicTest", "PrivateTest"],
                                  blind=blind_review_for(user=admin_user)))
    assert [r["Usage"] for r in rows] == ["Training", "PublicTest", "PrivateTest", "Training", "Training"]
    assert _counts(rows[0]) == votes(anger=6, neutral=2, sadness=3, NF=1)
    assert _counts(rows[2]) == votes(neutral=10, sadness=1)


@pytest.mark.django_db
def test_ferplus_export_of_another_dataset_is_its_own(reviewers):
    _dataset()
    Dataset.objects.create(name="other")
    assert list(ferplus_csv_rows(dataset="other", splits=SPLITS, blind=ADMIN)) == [
        "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n"]


@pytest.mark.django_db
def test_ferplus_export_through_the_api(reviewers, researcher, reviewer):
    from rest_framework.test import APIClient

    faces = _dataset()
    _review_votes(faces, reviewers)
    api = APIClient()
    api.force_authenticate(researcher)
    response = api.get("/api/review/export/ferplus.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == 'attachment; filename="fer2013-ferplus.csv"'
    rows = _rows(chunk.decode() for chunk in response.streaming_content)
    assert [r["Usage"] for r in rows] == ["Training", "PublicTest", "Training", "Training"]  # no PrivateTest, no NF
    # A researcher who voted in no round gets the FER+ counts alone (blind review).
    assert _counts(rows[0]) == votes(anger=6, neutral=2, sadness=2)
    bad = api.get("/api/review/export/ferplus.csv?dataset=a%0Ab")
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "dataset"
    api.force_authenticate(reviewer)
    assert api.get("/api/review/export/ferplus.csv").status_code == 403
