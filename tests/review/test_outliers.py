"""Queue items say why they are there (kind and detail), ``review_item_flag`` puts a face in the queue for a reason, and
a scoring run with ``outliers`` puts the faces that look least like faces there as outlier items."""

from __future__ import annotations

import pytest

from apps.core.errors import ApplicationError
from apps.review.models import ReviewItem, Vote
from apps.review.selectors import item_reasons
from apps.review.services import review_item_flag, review_vote_cast
from tests.faces.factories import FaceImageFactory
from tests.helpers import api_client

from .factories import ReviewItemFactory, leased_to

pytestmark = pytest.mark.django_db

OUTLIER = {"score": 0.93, "reason": "near-constant image (std 1.2)", "fired": ["near_constant"]}


def test_flag_creates_an_open_item_with_its_kind_and_detail():
    face = FaceImageFactory()
    item = review_item_flag(face=face, kind="outlier", detail=OUTLIER, priority=0.07)
    item.refresh_from_db()
    assert (item.face_id, item.status, item.kind, item.kind_detail, item.priority) == (
        face.pk, ReviewItem.Status.OPEN, "outlier", OUTLIER, 0.07)
    assert item_reasons(item) == ["an outlier, maybe not a face: near-constant image (std 1.2) (outlier score 0.93)"]


def test_flag_updates_an_open_item_and_keeps_its_votes(reviewers):
    item = ReviewItemFactory(priority=0.2)
    review_vote_cast(user=reviewers[0], item_id=leased_to(item, reviewers[0]).pk, choice=3)
    again = review_item_flag(face=item.face, kind="duplicate_conflict", detail={"group": 7}, priority=0.5)
    assert again.pk == item.pk and ReviewItem.objects.count() == 1
    item.refresh_from_db()
    assert (item.kind, item.kind_detail, item.priority, item.status) == ("duplicate_conflict", {"group": 7}, 0.2,
                                                                          ReviewItem.Status.OPEN)
    assert Vote.objects.filter(item=item).count() == 1  # the vote stays
    assert item_reasons(item)[0] == "a near-duplicate of other faces that carry a different label"
    review_item_flag(face=item.face, kind="outlier", detail=OUTLIER, priority=0.01)
    item.refresh_from_db()
    assert (item.kind, item.priority) == ("outlier", 0.01)  # the more urgent place wins


@pytest.mark.parametrize("status", [ReviewItem.Status.SETTLED, ReviewItem.Status.DISPUTED])
def test_flag_never_touches_a_decided_item(status):
    item = ReviewItemFactory(status=status, priority=0.3)
    review_item_flag(face=item.face, kind="outlier", detail=OUTLIER, priority=0.01)
    item.refresh_from_db()
    assert (item.kind, item.kind_detail, item.priority, item.status) == ("label_issue", {}, 0.3, status)


def test_flag_leaves_gold_items_as_they_are():
    item = ReviewItemFactory(is_gold=True, gold_label=3, priority=0.3)
    review_item_flag(face=item.face, kind="outlier", detail=OUTLIER, priority=0.01)
    item.refresh_from_db()
    assert (item.kind, item.priority) == ("label_issue", 0.3)


@pytest.mark.parametrize("kwargs", [{"kind": "blurry"}, {"detail": ["no"]}, {"priority": float("nan")},
                                    {"priority": "soon"}])
def test_flag_refuses_bad_input(kwargs):
    face = FaceImageFactory()
    with pytest.raises(ApplicationError) as err:
        review_item_flag(face=face, **({"kind": "outlier", "detail": {}, "priority": 0.5} | kwargs))
    assert err.value.status == 400
    assert not ReviewItem.objects.exists()


def test_the_api_serves_the_kind_and_its_detail(reviewers):
    item = review_item_flag(face=FaceImageFactory(), kind="outlier", detail=OUTLIER, priority=0.05)
    served = api_client(reviewers[0]).get("/api/review/items/next").json()["items"]
    assert [i["id"] for i in served] == [item.pk]
    assert (served[0]["kind"], served[0]["kind_label"], served[0]["kind_detail"]) == (
        "outlier", "outlier (maybe not a face)", OUTLIER)
    assert served[0]["reasons"] == ["an outlier, maybe not a face: near-constant image (std 1.2) "
                                    "(outlier score 0.93)"]


# --- outlier scoring in a scoring run --------------------------------------------------------------------------------

@pytest.fixture
def active(settings, tmp_path):
    from apps.inference import runtime
    from apps.inference.services.registry import model_version_register
    from tests.helpers import write_tiny_checkpoint

    settings.INFERENCE_REFRESH_ON_ACTIVATE = False
    runtime.clear()
    yield model_version_register(checkpoint_path=write_tiny_checkpoint(tmp_path / "v.pt", seed=3), name="tiny",
                                 activate=True)
    runtime.clear()


def _faces_and_non_faces() -> dict[str, int]:
    """30 drawn faces and five non-faces (blank, black, noise, text, gradient) as labelled Training faces; the
    non-faces' ids by name."""
    import numpy as np

    from apps.faces.models import FaceImage
    from apps.faces.services import FaceRecord, FaceWriter, dataset_get_or_create
    from tests.ml.test_outliers import drawn_face, non_faces

    rng = np.random.default_rng(5)
    images = [drawn_face(rng) for _ in range(30)]
    odd = non_faces(rng)
    images += list(odd.values())
    writer = FaceWriter(dataset_get_or_create(name="fer2013"))
    with writer.scope():
        writer.write([FaceRecord(raw=img.tobytes(), split="Training", label=i % 7, source_row=i)
                      for i, img in enumerate(images)])
    rows = dict(FaceImage.objects.values_list("source_row", "pk"))
    return {name: rows[30 + j] for j, name in enumerate(odd)}


def _run(**kwargs):
    from apps.review.scoring import scoring_run_create, scoring_run_execute

    return scoring_run_execute(scoring_run_create(method="in_sample", filter_by="predicted_neq_given", **kwargs).pk)


def test_a_run_with_outliers_queues_the_non_faces_with_their_reasons(active):
    odd = _faces_and_non_faces()
    run = _run(outliers=10)
    assert run.outlier_model_version == active
    outliers = {i.face_id: i for i in ReviewItem.objects.filter(kind="outlier")}
    assert set(outliers) == set(odd.values())  # all five, and no drawn face (none reaches 0.5)
    report = run.outlier_report
    assert (report["scored"], report["suspects"], report["items_retired"]) == (35, 5, 0)
    assert report["items_created"] + report["items_updated"] == 5
    blank = outliers[odd["blank"]]
    assert blank.kind_detail["fired"][0] == "near_constant" and blank.kind_detail["run"] == run.pk
    assert blank.priority == pytest.approx(1 - blank.kind_detail["score"])
    assert item_reasons(blank)[0].startswith("an outlier, maybe not a face: near-constant image (pixel std 0.0)")
    assert item_reasons(outliers[odd["noise"]])[0].startswith("an outlier, maybe not a face: noise-like")
    # the label issues of the same run are still there, as label issues
    assert ReviewItem.objects.filter(kind="label_issue").count() == run.issue_count - len(
        set(outliers) & set(run.scores.filter(is_issue=True).values_list("face_id", flat=True)))


def test_the_next_runs_keep_voted_outliers_and_label_runs_leave_them_alone(active, reviewers):
    odd = _faces_and_non_faces()
    _run(outliers=10)
    voted = ReviewItem.objects.get(face_id=odd["text"])
    review_vote_cast(user=reviewers[0], item_id=leased_to(voted, reviewers[0]).pk, choice=7)
    label_only = _run()
    assert label_only.outlier_report is None
    assert ReviewItem.objects.filter(kind="outlier").count() == 5  # not a label run's to retire
    fewer = _run(outliers=1, outlier_min_score=0.99)  # only the strongest suspect now
    kept = set(ReviewItem.objects.filter(kind="outlier").values_list("face_id", flat=True))
    assert odd["text"] in kept  # it carries a vote
    assert len(kept - {odd["text"]}) == 1 and fewer.outlier_report["suspects"] == 1
    flagged = set(fewer.scores.filter(is_issue=True).values_list("face_id", flat=True))
    for name, face in odd.items():  # the others went back to label issues or out of the queue
        if face not in kept:
            item = ReviewItem.objects.filter(face_id=face).first()
            assert (item is not None and item.kind == "label_issue") == (face in flagged), name
    assert fewer.outlier_report["items_retired"] + fewer.outlier_report["back_to_label_issue"] == 3


def test_outlier_scoring_needs_an_active_version_and_sane_settings():
    from apps.review.scoring import ScoringRunError, scoring_run_create

    with pytest.raises(ScoringRunError, match="no version is active"):
        scoring_run_create(method="out_of_fold", outliers=5)
    with pytest.raises(ScoringRunError, match="outliers must be"):
        scoring_run_create(method="out_of_fold", outliers=-1)
    with pytest.raises(ScoringRunError, match="outlier_min_score"):
        scoring_run_create(method="out_of_fold", outlier_min_score=1.5)


def test_the_api_starts_a_run_with_outliers(active, reviewers):
    from apps.accounts.roles import Role
    from tests.accounts.factories import UserFactory

    admin = api_client(UserFactory(username="boss", roles=[Role.ADMIN]))
    answer = admin.post("/api/review/scoring-runs", {"method": "in_sample", "outliers": 25,
                                                     "outlier_min_score": 0.7}, format="json")
    assert answer.status_code == 202, answer.content
    assert (answer.json()["outliers"], answer.json()["outlier_min_score"], answer.json()["outlier_report"]) == (
        25, 0.7, None)
    bad = admin.post("/api/review/scoring-runs", {"method": "in_sample", "outliers": 10**6}, format="json")
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "outliers"
