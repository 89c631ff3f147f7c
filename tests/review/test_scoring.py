from __future__ import annotations

import pytest
from django.core.management import call_command

from apps.core.work import work_kind
from apps.faces.models import FaceImage
from apps.review.models import LabelScore, ReviewItem, ScoringRun, Vote
from apps.review.scoring import ScoringRunError, scoring_run_create, scoring_run_execute
from apps.review.services import review_vote_cast
from apps.review.tasks import score_labels_task

from .factories import leased_to
from .scoring_data import TINY_RECIPE, synthetic_faces

pytestmark = pytest.mark.django_db

# predicted_neq_given flags every face whose out-of-sample argmax differs from its label: after one epoch of a
# tiny network that is many of them, so the test does not depend on how well the network learned.
RUN = {"folds": 2, "epochs": 1, "filter_by": "predicted_neq_given", "recipe_overrides": TINY_RECIPE}


def test_scoring_run_fills_the_queue_and_a_rerun_keeps_items_and_votes(reviewers, settings):
    synthetic_faces()
    run = scoring_run_execute(scoring_run_create(**RUN).pk)
    assert run.status == ScoringRun.Status.SUCCEEDED and run.started_at and run.finished_at
    assert run.scored_count == 56  # Training only
    assert run.issue_count == run.items_created > 0
    assert LabelScore.objects.filter(run=run).count() == 56
    assert run.progress.get("kind") == "fold" and run.progress.get("fold") == 2
    items = list(ReviewItem.objects.order_by("priority"))
    assert len(items) == run.issue_count
    qualities = [i.score.quality for i in items]
    assert qualities == sorted(qualities) and all(i.priority == i.score.quality for i in items)
    assert all(len(i.score.probabilities) == 7 and i.suggested_label != i.face.current_label for i in items)
    assert not (settings.REVIEW_SCORING_DIR / f"run-{run.pk}").exists()  # done: nothing to resume

    voted = items[0]
    review_vote_cast(user=reviewers[0], item_id=leased_to(voted, reviewers[0]).pk, choice=2)
    rerun = scoring_run_execute(scoring_run_create(**{**RUN, "seed": 1}).pk)
    flagged_again = set(LabelScore.objects.filter(run=rerun, is_issue=True).values_list("face_id", flat=True))
    first = {i.face_id for i in items}
    # The queue is the new run's: faces it flags again are updated, untouched items it no longer flags retire, and the
    # voted item stays whatever the new run thinks of it.
    assert rerun.items_retired == len(first - flagged_again - {voted.face_id}) > 0
    assert rerun.items_updated == len(items) - rerun.items_retired
    assert rerun.items_created == len(flagged_again - first)
    assert set(ReviewItem.objects.values_list("face_id", flat=True)) == flagged_again | {voted.face_id}
    assert ReviewItem.objects.values("face").distinct().count() == ReviewItem.objects.count()  # no duplicates
    voted.refresh_from_db()
    assert voted.score.run_id == rerun.pk  # the score moved to the new run ...
    assert list(Vote.objects.filter(item=voted).values_list("choice", flat=True)) == [2]  # ... the vote stayed


def test_excluded_faces_are_not_scored(reviewers):
    synthetic_faces()
    FaceImage.objects.filter(source_row__lt=3).update(excluded=True)
    run = scoring_run_execute(scoring_run_create(**RUN).pk)
    assert run.scored_count == 53


def test_a_failed_run_records_its_error_and_can_run_again():
    run = scoring_run_create(**RUN)
    with pytest.raises(ScoringRunError, match="too few"):
        scoring_run_execute(run.pk)
    run.refresh_from_db()
    assert run.status == ScoringRun.Status.FAILED and "too few" in run.error
    synthetic_faces()
    assert scoring_run_execute(run.pk).status == ScoringRun.Status.SUCCEEDED
    with pytest.raises(ScoringRunError, match="succeeded"):
        scoring_run_execute(run.pk)


def test_every_way_to_start_a_run_ranks_by_normalized_margin_by_default():
    """The default chosen on real relabels (docs/benchmarks.md, "Real relabels"): the service, the model, the API's
    input and the command agree."""
    from apps.review.management.commands.score_labels import Command
    from apps.review.serializers import ScoringRunInputSerializer

    assert scoring_run_create().ranking == "normalized_margin"
    assert ScoringRun().ranking == "normalized_margin"
    given = ScoringRunInputSerializer(data={})
    assert given.is_valid(), given.errors
    assert given.validated_data["ranking"] == "normalized_margin"
    assert Command().create_parser("manage.py", "score_labels").parse_args([]).ranking == "normalized_margin"


def test_invalid_parameters_are_refused():
    with pytest.raises(ScoringRunError, match="ranking"):
        scoring_run_create(ranking="nope")
    with pytest.raises(ScoringRunError, match="folds"):
        scoring_run_create(folds=1)
    with pytest.raises(ScoringRunError, match="cannot be null: lr"):
        scoring_run_create(recipe_overrides={"lr": None})
    with pytest.raises(ScoringRunError, match="unknown recipe field"):
        scoring_run_create(recipe_overrides={"learning_rate": 0.1})
    with pytest.raises(ScoringRunError, match="fixed"):
        scoring_run_create(recipe_overrides={"augment": {}})


def test_task_called_directly_and_routed_to_bulk():

    synthetic_faces()
    run = scoring_run_create(**RUN)
    assert score_labels_task(run.pk) == {"scoring_run": run.pk, "status": "succeeded"}
    run.refresh_from_db()
    assert run.scored_count == 56  # the row says it all
    assert work_kind("scoring_run").queue == "bulk"  # declared with the kind, read when the run is sent


def test_management_command_reports_progress(capsys, monkeypatch):
    synthetic_faces()
    import apps.review.management.commands.score_labels as command

    real_create = command.scoring_run_create
    monkeypatch.setattr(command, "scoring_run_create",
                        lambda **kw: real_create(**{**kw, "recipe_overrides": TINY_RECIPE,
                                                    "filter_by": "predicted_neq_given"}))
    call_command("score_labels", "--folds", "2", "--epochs", "1")
    out = capsys.readouterr().out
    assert "fold 1/2 epoch 1/1" in out and "fold 2/2 done" in out and "scored 56 faces" in out


def test_a_crashed_run_resumes_without_redoing_finished_folds():
    synthetic_faces()
    run = scoring_run_create(**RUN)

    def crash_after_fold_one(event: dict) -> None:
        if event.get("kind") == "fold" and event["fold"] == 1:
            raise RuntimeError("worker lost")

    with pytest.raises(RuntimeError):
        scoring_run_execute(run.pk, progress=crash_after_fold_one)
    events: list[dict] = []
    assert scoring_run_execute(run.pk, progress=events.append).status == ScoringRun.Status.SUCCEEDED
    folds = [(e["fold"], e["reused"]) for e in events if e.get("kind") == "fold"]
    assert folds == [(1, True), (2, False)]


@pytest.mark.parametrize(("field", "value"), [("epochs", 0), ("epochs", 201), ("epochs", 40_000), ("seed", -1),
                                              ("seed", 2**31), ("seed", 10**20)])
def test_scoring_run_epochs_and_seed_are_bounded(admin_user, field, value):
    from rest_framework.test import APIClient

    from tests.api_errors import field_errors

    api = APIClient()
    api.force_authenticate(admin_user)
    response = api.post("/api/review/scoring-runs", {"folds": 2, field: value}, format="json")
    assert response.status_code == 400 and field in field_errors(response)
    assert not ScoringRun.objects.exists()
    with pytest.raises(ScoringRunError, match=field):  # the command's way in refuses them too
        scoring_run_create(**{field: value})


def test_scoring_run_bounds_are_inclusive(admin_user):
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(admin_user)
    response = api.post("/api/review/scoring-runs", {"folds": 2, "epochs": 200, "seed": 2**31 - 1}, format="json")
    assert response.status_code == 202, response.content
    assert (response.json()["epochs"], response.json()["seed"]) == (200, 2**31 - 1)
