"""Scoring runs from the web: in-sample and out-of-fold methods, progress with an ETA, cancel and resume, the queue
handed from one run to the next, the API, the first-start bootstrap step, and a real worker."""

from __future__ import annotations

import numpy as np
import pytest
from rest_framework.test import APIClient

from apps.inference import runtime
from apps.inference.services.registry import model_version_register
from apps.review.models import LabelScore, ReviewItem, ScoringRun
from apps.review.scoring import (
    SCORING_RUN,
    ScoringProgress,
    ScoringRunError,
    scoring_run_cancel,
    scoring_run_create,
    scoring_run_execute,
    scoring_run_resume,
    training_faces,
)
from apps.review.services import review_vote_cast
from apps.review.tasks import score_labels_task
from ml.data import FaceArrays
from ml.dynamics import TrainingDynamics
from ml.recipes import apply_overrides, get_recipe
from ml.scoring import short_run
from tests.helpers import write_tiny_checkpoint

from .factories import leased_to
from .scoring_data import TINY_RECIPE, synthetic_faces

pytestmark = pytest.mark.django_db

OOF = {"folds": 2, "epochs": 2, "filter_by": "predicted_neq_given", "recipe_overrides": TINY_RECIPE}


@pytest.fixture
def active(settings, tmp_path):
    settings.INFERENCE_REFRESH_ON_ACTIVATE = False
    runtime.clear()
    version = model_version_register(checkpoint_path=write_tiny_checkpoint(tmp_path / "v.pt", seed=3), name="tiny",
                                     activate=True)
    yield version
    runtime.clear()


def api_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_in_sample_run_ranks_with_the_active_model_in_one_pass(active):
    synthetic_faces()
    events: list[dict] = []
    run = scoring_run_execute(scoring_run_create(method="in_sample", filter_by="predicted_neq_given").pk,
                              progress=events.append)
    assert run.status == ScoringRun.Status.SUCCEEDED and run.model_version == active and run.folds == 0
    assert run.scored_count == 56 and run.issue_count == run.items_created > 0
    assert [e["kind"] for e in events] == ["predict"] and events[-1]["done"] == events[-1]["total"] == 56
    assert run.progress["fraction"] == 1.0
    # The scores are the active model's own flip-TTA probabilities on these faces.
    from apps.review.scoring import training_faces
    from ml.evaluate import predict_proba

    ids, images, _ = training_faces()
    expected = predict_proba(runtime.loaded(active).model, images, tta="flip", amp_bf16=True)
    stored = dict(LabelScore.objects.filter(run=run).values_list("face_id", "probabilities"))
    assert np.allclose([stored[i] for i in ids], expected, atol=5e-3)


def test_in_sample_needs_an_active_version_and_trains_nothing(active):
    active.status = "archived"
    active.save()
    with pytest.raises(ScoringRunError, match="no version is active"):
        scoring_run_create(method="in_sample")
    active.status = "active"
    active.save()
    with pytest.raises(ScoringRunError, match="runs that train: an in-sample run trains nothing"):
        scoring_run_create(method="in_sample", epochs=3)
    with pytest.raises(ScoringRunError, match="unknown method"):
        scoring_run_create(method="bagging")


def test_the_refined_run_replaces_the_provisional_queue_without_duplicates_or_lost_votes(active, reviewers):
    synthetic_faces()
    provisional = scoring_run_execute(scoring_run_create(method="in_sample", filter_by="predicted_neq_given").pk)
    items = list(ReviewItem.objects.order_by("priority", "id"))
    assert len(items) == provisional.issue_count > 3
    voted, leased = items[0], items[1]
    review_vote_cast(user=reviewers[0], item_id=leased_to(voted, reviewers[0]).pk, choice=3)
    leased_to(leased, reviewers[1])

    refined = scoring_run_execute(scoring_run_create(**OOF).pk)
    flagged = set(LabelScore.objects.filter(run=refined, is_issue=True).values_list("face_id", flat=True))
    kept = flagged | {voted.face_id, leased.face_id}  # touched items stay whatever the new run thinks
    assert set(ReviewItem.objects.values_list("face_id", flat=True)) == kept
    assert ReviewItem.objects.values("face").distinct().count() == ReviewItem.objects.count()
    assert refined.items_retired == len({i.face_id for i in items} - kept)
    voted.refresh_from_db()
    assert voted.votes.get().choice == 3 and voted.score.run == refined
    assert ReviewItem.objects.filter(score__run=provisional).count() == 0  # every item now carries the new scores


def test_progress_has_the_share_done_and_an_eta_per_fold_and_epoch():
    run = ScoringRun.objects.create(folds=4, status=ScoringRun.Status.RUNNING)
    recorder = ScoringProgress(SCORING_RUN, run)
    assert recorder.fraction({"kind": "batch", "fold": 2, "folds": 4, "epoch": 3, "epochs": 4, "step": 5,
                              "steps": 10}) == pytest.approx((1 + (2 + 0.5) / 4) / 4)
    assert recorder.fraction({"kind": "epoch", "fold": 1, "folds": 4, "epoch": 2, "epochs": 4}) == 0.125
    assert recorder.fraction({"kind": "fold", "fold": 3, "folds": 4}) == 0.75
    in_sample = ScoringProgress(SCORING_RUN, ScoringRun.objects.create(method="in_sample", folds=0))
    assert in_sample.fraction({"kind": "predict", "done": 30, "total": 120}) == 0.25
    recorder({"kind": "epoch", "fold": 1, "folds": 4, "epoch": 1, "epochs": 4, "train_loss": 1.5, "seconds": 3.0})
    run.refresh_from_db()
    assert run.progress["fraction"] == 0.0625 and run.progress["eta_seconds"] is None  # too early to tell
    assert run.history == [{"fold": 1, "folds": 4, "epoch": 1, "epochs": 4, "train_loss": 1.5, "seconds": 3.0,
                            "images_per_s": None}]
    recorder.started -= 60  # a minute later, a quarter done: three more minutes
    recorder({"kind": "fold", "fold": 1, "folds": 4, "reused": False})
    run.refresh_from_db()
    assert run.progress["fraction"] == 0.25
    assert 60 * 0.75 / (0.25 - 0.0625) == pytest.approx(run.progress["eta_seconds"], abs=2)
    assert run.history[-1] == {"fold": 1, "folds": 4, "fold_done": True, "reused": False}


def test_a_run_the_sweeper_took_back_meanwhile_records_no_results():
    """Its worker was thought lost and the row went back to the queue: this attempt's scores are not stored (the
    next attempt stores them once), and no item is made."""
    synthetic_faces()
    run = scoring_run_create(**OOF)

    def taken_back(event):
        if event.get("kind") == "fold" and event["fold"] == 2:
            ScoringRun.objects.filter(pk=run.pk).update(status=ScoringRun.Status.QUEUED)  # what the sweeper does

    assert scoring_run_execute(run.pk, progress=taken_back).status == ScoringRun.Status.QUEUED
    assert not LabelScore.objects.filter(run=run).exists() and not ReviewItem.objects.exists()
    done = scoring_run_execute(run.pk)
    assert done.status == ScoringRun.Status.SUCCEEDED and LabelScore.objects.filter(run=run).count() == 56


def test_cancel_stops_a_running_run_and_resume_finishes_it_from_its_folds():
    synthetic_faces()
    run = scoring_run_create(**OOF)

    def cancel_in_fold_two(event: dict) -> None:
        if event.get("kind") == "batch" and event.get("fold") == 2:
            scoring_run_cancel(run_id=run.pk)

    stopped = scoring_run_execute(run.pk, progress=cancel_in_fold_two)
    assert stopped.status == ScoringRun.Status.CANCELLED and "cancelled" in stopped.error
    assert not ReviewItem.objects.exists() and not LabelScore.objects.exists()
    assert any(h.get("fold_done") for h in stopped.history)

    with pytest.raises(Exception, match="cancelled already"):
        scoring_run_cancel(run_id=run.pk)
    resumed = scoring_run_resume(run_id=run.pk)
    assert resumed.status == ScoringRun.Status.QUEUED and not resumed.cancel_requested
    events: list[dict] = []
    done = scoring_run_execute(run.pk, progress=events.append, from_statuses=(ScoringRun.Status.QUEUED,))
    assert done.status == ScoringRun.Status.SUCCEEDED and done.scored_count == 56
    assert [(e["fold"], e["reused"]) for e in events if e.get("kind") == "fold"] == [(1, True), (2, False)]
    with pytest.raises(Exception, match="only cancelled or failed runs resume"):
        scoring_run_resume(run_id=run.pk)


def test_a_queued_run_is_cancelled_at_once_and_its_message_does_nothing():
    run = scoring_run_create(**OOF)
    assert scoring_run_cancel(run_id=run.pk).status == ScoringRun.Status.CANCELLED
    assert score_labels_task(run.pk) == {"scoring_run": run.pk, "status": "not claimed"}


def test_api_starts_watches_cancels_and_resumes(admin_user, reviewer, active):
    api = api_for(admin_user)
    response = api.post("/api/review/scoring-runs", {"method": "in_sample"}, format="json")
    assert response.status_code == 202
    body = response.json()
    assert body["method"] == "in_sample" and body["model_version_name"] == "tiny" and body["epochs_per_fold"] is None
    run_id = body["id"]
    assert api.get(f"/api/review/scoring-runs/{run_id}").json()["status"] == "queued"
    assert api.post(f"/api/review/scoring-runs/{run_id}/cancel").json()["status"] == "cancelled"
    conflict = api.post(f"/api/review/scoring-runs/{run_id}/cancel")
    assert conflict.status_code == 409 and conflict.json()["code"] == "scoring_run_state"
    assert api.post(f"/api/review/scoring-runs/{run_id}/resume").status_code == 202
    assert api.get("/api/review/scoring-runs/999999").status_code == 404
    oof = api.post("/api/review/scoring-runs", {"folds": 3}, format="json").json()
    assert oof["method"] == "out_of_fold" and oof["epochs_per_fold"] == 12  # the scoring recipe's
    bad = api.post("/api/review/scoring-runs", {"method": "magic"}, format="json")
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "method"
    assert api_for(reviewer).post(f"/api/review/scoring-runs/{run_id}/cancel").status_code == 403


def test_an_activation_that_replaces_a_version_re_ranks_in_sample_then_refines_with_a_short_run(active, settings,
                                                                                                 tmp_path):
    settings.INFERENCE_REFRESH_ON_ACTIVATE = True
    newer = model_version_register(checkpoint_path=write_tiny_checkpoint(tmp_path / "n.pt", seed=4), name="newer",
                                   activate=True)
    runs = list(ScoringRun.objects.order_by("pk"))
    assert [(r.method, r.model_version, r.blend_active) for r in runs] == [("in_sample", newer, False),
                                                                          ("short_run", newer, True)]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_in_sample_run_through_a_real_worker(review_worker, settings, tmp_path):
    queue, media_root = review_worker
    settings.MEDIA_ROOT = media_root  # the worker reads the PNGs and the checkpoint this test writes
    settings.INFERENCE_REFRESH_ON_ACTIVATE = False
    model_version_register(checkpoint_path=write_tiny_checkpoint(tmp_path / "w.pt", seed=5), name="w", activate=True)
    synthetic_faces()
    run = scoring_run_create(method="in_sample", filter_by="predicted_neq_given")
    result = score_labels_task.apply_async((run.pk,), queue=queue).get(timeout=300)
    assert result == {"scoring_run": run.pk, "status": "succeeded"}
    run.refresh_from_db()
    assert run.scored_count == 56 and run.progress["kind"] == "predict" and run.progress["fraction"] == 1.0
    assert ReviewItem.objects.count() == run.items_created > 0


def test_a_blended_run_averages_the_held_out_and_the_active_models_probabilities(active):
    synthetic_faces()
    oof = scoring_run_execute(scoring_run_create(**OOF).pk)
    in_sample = scoring_run_execute(scoring_run_create(method="in_sample").pk)
    events: list[dict] = []
    blended = scoring_run_execute(scoring_run_create(**OOF, blend_active=True).pk, progress=events.append)
    assert blended.status == ScoringRun.Status.SUCCEEDED and blended.model_version == active
    probs = {run.pk: dict(LabelScore.objects.filter(run=run).values_list("face_id", "probabilities"))
             for run in (oof, in_sample, blended)}
    faces = sorted(probs[oof.pk])
    expected = (np.array([probs[oof.pk][f] for f in faces]) + np.array([probs[in_sample.pk][f] for f in faces])) / 2
    assert np.allclose([probs[blended.pk][f] for f in faces], expected, atol=2e-3)
    # Progress: the folds take 2 of 2.2 units, the in-sample pass the rest.
    recorder = ScoringProgress(SCORING_RUN, blended)
    assert recorder.fraction({"kind": "fold", "fold": 2, "folds": 2}) == pytest.approx(2 / 2.2)
    assert recorder.fraction(events[-1]) == 1.0 and events[-1]["kind"] == "predict"
    with pytest.raises(ScoringRunError, match="out-of-fold and short runs"):
        scoring_run_create(method="in_sample", blend_active=True)


def test_a_short_run_ranks_with_one_models_snapshots_and_can_blend(active, settings):
    """One model on every face; its probability snapshots along the run (here epochs 4 and 8 of 8), averaged, are
    what it ranks with, alone or averaged with the active version's in-sample probabilities."""
    synthetic_faces()
    short = {"method": "short_run", "epochs": 8, "filter_by": "predicted_neq_given", "recipe_overrides": TINY_RECIPE}
    events: list[dict] = []
    run = scoring_run_execute(scoring_run_create(**short, folds=7).pk, progress=events.append)
    assert run.status == ScoringRun.Status.SUCCEEDED, run.error
    assert run.folds == 1 and run.scored_count == 56 and run.issue_count == run.items_created
    assert [e["epoch"] for e in events if e["kind"] == "epoch"] == list(range(1, 9))
    assert ScoringProgress(SCORING_RUN, run).fraction(events[-1]) == 1.0
    assert not (settings.REVIEW_SCORING_DIR / f"run-{run.pk}").exists()
    # Its probabilities are its snapshots' mean: rerun the same model (same seed) in the ml package to compare.
    faces = list(LabelScore.objects.filter(run=run).order_by("face_id").values_list("face_id", "probabilities"))
    _, images, labels = training_faces()
    recipe = apply_overrides(get_recipe("scoring"), TINY_RECIPE)
    again = short_run(FaceArrays.from_arrays(images, labels), recipe=recipe, epochs=8, seed=0,
                      work_dir=settings.REVIEW_SCORING_DIR / "again")
    assert isinstance(again, TrainingDynamics) and sorted(again.snapshots) == [4, 8]
    assert np.allclose([p for _, p in faces], again.snapshot_probabilities("mean"), atol=2e-3)
    # Each score carries what the short run saw, for the reasons a reviewer reads.
    signals = list(LabelScore.objects.filter(run=run).order_by("face_id").values_list("signals", flat=True))
    assert signals == again.row_signals(again.snapshot_probabilities("mean").argmax(1))
    assert all(0 < s["epochs"] <= 8 for s in signals) and {s["snapshots"] for s in signals} == {2}

    in_sample = scoring_run_execute(scoring_run_create(method="in_sample").pk)
    blended = scoring_run_execute(scoring_run_create(**short, blend_active=True).pk)
    probs = {r.pk: dict(LabelScore.objects.filter(run=r).values_list("face_id", "probabilities"))
             for r in (run, in_sample, blended)}
    ids = sorted(probs[run.pk])
    expected = (0.7 * np.array([probs[run.pk][f] for f in ids]) + 0.3 * np.array([probs[in_sample.pk][f] for f in ids]))
    assert np.allclose([probs[blended.pk][f] for f in ids], expected, atol=2e-3)


def test_blending_without_an_active_version_is_a_clear_400(admin_user):
    response = api_for(admin_user).post("/api/review/scoring-runs", {"blend_active": True}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "scoring_run_invalid"
    assert "no version is active" in response.json()["detail"] and not ScoringRun.objects.exists()


def test_the_command_scores_in_sample_and_refuses_it_without_an_active_version(active, capsys):
    from django.core.management import CommandError, call_command

    synthetic_faces()
    call_command("score_labels", "--method", "in_sample", "--filter-by", "predicted_neq_given")
    out = capsys.readouterr().out
    assert "predicted 56/56 faces" in out and "scored 56 faces" in out
    assert ScoringRun.objects.get().method == "in_sample"
    active.status = "archived"
    active.save()
    with pytest.raises(CommandError, match="no version is active"):
        call_command("score_labels", "--method", "in_sample")


def test_a_dynamics_run_ranks_with_the_active_versions_own_training_dynamics(active, tmp_path):
    """Free after a retrain: the version's snapshots' mean for the faces it trained on, its in-sample probabilities
    for a face added since; margins become signals where the label is still the one it trained on."""
    from apps.faces.models import FaceImage
    from ml.dynamics import dynamics_path

    with pytest.raises(ScoringRunError, match="has none"):
        scoring_run_create(method="dynamics")
    synthetic_faces()
    ids, _, labels = training_faces()
    trained, added = ids[:-1], ids[-1]
    dynamics = TrainingDynamics.empty(np.array(trained), labels[:-1], epochs=2)
    dynamics.margins[:] = -1.0
    rng = np.random.default_rng(0)
    for epoch in (1, 2):
        probs = rng.random((len(trained), 7)).astype(np.float32)
        dynamics.record_snapshot(epoch, probs / probs.sum(1, keepdims=True))
    checkpoint = write_tiny_checkpoint(tmp_path / "d.pt", seed=6)
    dynamics.save(dynamics_path(checkpoint))
    version = model_version_register(checkpoint_path=checkpoint, name="with dynamics", activate=True,
                                     dynamics_path=dynamics_path(checkpoint))
    FaceImage.objects.filter(pk=trained[0]).update(current_label=(int(labels[0]) + 1) % 7)  # corrected since
    run = scoring_run_execute(scoring_run_create(method="dynamics", filter_by="predicted_neq_given").pk)
    assert run.status == ScoringRun.Status.SUCCEEDED and run.model_version == version and run.folds == 0
    stored = {f: (p, s) for f, p, s in LabelScore.objects.filter(run=run).values_list("face_id", "probabilities",
                                                                                       "signals")}
    assert len(stored) == len(ids)
    mean = dynamics.snapshot_probabilities("mean")
    assert np.allclose([stored[f][0] for f in trained], mean, atol=2e-3)
    in_sample = scoring_run_execute(scoring_run_create(method="in_sample").pk)
    assert np.allclose(stored[added][0], LabelScore.objects.get(run=in_sample, face_id=added).probabilities,
                       atol=2e-3)
    assert stored[added][1] == {} and stored[trained[0]][1] == {}  # no dynamics / another label since
    assert stored[trained[1]][1]["negative_epochs"] == 2 and stored[trained[1]][1]["snapshots"] == 2
    with pytest.raises(ScoringRunError, match="trains nothing"):
        scoring_run_create(method="dynamics", epochs=3)
