from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.review.choices import UNSURE
from apps.review.models import LabelScore, ReviewItem, ScoringRun, Skip, Vote
from apps.review.services import review_item_next_for
from tests.api_errors import error_body
from tests.helpers import api_client

from .factories import ReviewItemFactory, leased_to

pytestmark = pytest.mark.django_db


def test_only_reviewers_and_admins_use_the_queue(reviewer, researcher, admin_user):
    item = ReviewItemFactory()
    assert APIClient().get("/api/review/items/next").status_code in (401, 403)
    assert api_client(researcher).get("/api/review/items/next").status_code == 403
    assert api_client(researcher).post(f"/api/review/items/{item.pk}/votes", {"choice": 1}).status_code == 403
    assert api_client(reviewer).get("/api/review/items/next").status_code == 200
    assert api_client(admin_user).get("/api/review/stats").status_code == 200
    assert api_client(reviewer).post(f"/api/review/items/{item.pk}/reopen").status_code == 403
    assert api_client(reviewer).get("/api/review/export/kaggle.csv").status_code == 403
    assert api_client(researcher).get("/api/review/export/history.csv").status_code == 200


def test_next_vote_undo_skip_through_the_api(reviewers):
    first, second = ReviewItemFactory(priority=0.1), ReviewItemFactory(priority=0.2)
    api = api_client(reviewers[0])
    body = api.get("/api/review/items/next", {"count": 2}).json()
    assert [i["id"] for i in body["items"]] == [first.pk, second.pk]
    shown = body["items"][0]
    assert shown["image"].endswith(".png") and shown["current_label_name"] == "happy"
    assert shown["suggested_label"] == 4 and "votes" not in shown
    assert body["progress"] == {"items_left": 2, "votes_today": 0}
    response = api.post(f"/api/review/items/{first.pk}/votes", {"choice": 4}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["item_status"] == "open" and response.json()["progress"]["votes_today"] == 1
    again = api.post(f"/api/review/items/{first.pk}/votes", {"choice": 4}, format="json")
    assert again.status_code == 409 and error_body(again)["code"] == "already_voted"
    assert api.post(f"/api/review/items/{first.pk}/votes", {"choice": 12}, format="json").status_code == 400
    assert api.post("/api/review/items/999999/votes", {"choice": 1}, format="json").status_code == 404
    undo = api.post("/api/review/votes/undo").json()
    assert undo["item"]["id"] == first.pk and undo["undone_choice"] == 4
    assert api.post(f"/api/review/items/{first.pk}/skip").status_code == 204
    assert [i["id"] for i in api.get("/api/review/items/next", {"count": 3}).json()["items"]] == [second.pk]


def test_votes_are_blind_until_you_vote(reviewers, admin_user):
    item = ReviewItemFactory()
    assert [i.pk for i in review_item_next_for(user=reviewers[0])] == [item.pk]
    api_client(reviewers[0]).post(f"/api/review/items/{item.pk}/votes", {"choice": 2}, format="json")
    second = api_client(reviewers[1])
    served = second.get("/api/review/items/next").json()["items"][0]
    assert served["id"] == item.pk and "votes" not in served and "2" not in str(served.get("choice", ""))
    detail = second.get(f"/api/review/items/{item.pk}").json()  # leased to reviewer1 now, so readable
    assert detail["votes"] is None  # not before voting
    assert api_client(admin_user).get(f"/api/review/items/{item.pk}").json()["votes"][0]["choice"] == 2
    second.post(f"/api/review/items/{item.pk}/votes", {"choice": UNSURE}, format="json")
    Vote.objects.update(created_at=timezone.now() - timedelta(days=1))  # past the undo window
    assert second.get(f"/api/review/items/{item.pk}").json()["votes"] is None  # "unsure" is no counted vote
    votes = api_client(reviewers[0]).get(f"/api/review/items/{item.pk}").json()["votes"]  # a final counted vote
    assert [(v["reviewer"], v["choice"]) for v in votes] == [("reviewer0", 2), ("reviewer1", UNSURE)]


def test_item_detail_shows_history_and_admin_reopen(reviewers, admin_user):
    item = ReviewItemFactory()
    for reviewer in reviewers[:2]:
        assert [i.pk for i in review_item_next_for(user=reviewer)] == [item.pk]
        api_client(reviewer).post(f"/api/review/items/{item.pk}/votes", {"choice": 0}, format="json")
    detail = api_client(reviewers[0]).get(f"/api/review/items/{item.pk}").json()
    assert detail["status"] == "settled" and detail["settled_label"] == 0
    assert [(h["kind"], h["old_label"], h["new_label"]) for h in detail["history"]] == [("quorum", 3, 0)]
    reopened = api_client(admin_user).post(f"/api/review/items/{item.pk}/reopen").json()
    assert reopened["status"] == "reopened" and reopened["round"] == 2
    assert api_client(admin_user).post(f"/api/review/items/{item.pk}/reopen").status_code == 409
    settled = api_client(admin_user).post(f"/api/review/items/{item.pk}/settle", {"choice": 5}, format="json").json()
    assert settled["status"] == "settled" and settled["history"][-1]["actor"] == "ada-admin"


def test_stats_agreement_and_gold(reviewers, admin_user):
    items = ReviewItemFactory.create_batch(3)
    gold_face = items[2].face
    ReviewItem.objects.filter(pk=items[2].pk).delete()
    run = ScoringRun.objects.create(status=ScoringRun.Status.SUCCEEDED)  # gold faces are scored Training faces
    LabelScore.objects.create(run=run, face=gold_face, given_label=3, quality=0.5, suggested_label=4,
                              suggested_probability=0.4, probabilities=[1 / 7] * 7)
    gold = api_client(admin_user).post("/api/review/gold", {"face": gold_face.pk, "label": 3}, format="json")
    assert gold.status_code == 201 and gold.json()["gold_label"] == 3
    votes = {0: (4, 4, 3), 1: (4, 5, 3)}  # reviewer -> choices on items[0], items[1], gold
    for r, choices in votes.items():
        api = api_client(reviewers[r])
        assert len(review_item_next_for(user=reviewers[r], count=3)) == 3  # leases all three
        for item_id, choice in zip([items[0].pk, items[1].pk, gold.json()["id"]], choices, strict=True):
            assert api.post(f"/api/review/items/{item_id}/votes", {"choice": choice}, format="json").status_code == 201
    stats = api_client(reviewers[0]).get("/api/review/stats").json()
    # open: items[1] and the gold item (counted like any other, so that the counts do not give the gold count away)
    assert stats["settled"] == 1 and stats["open"] == 2 and stats["gold"] is None and stats["votes"] == 6
    assert api_client(admin_user).get("/api/review/stats").json()["gold"] == 1  # gold figures: admins only
    agreement = api_client(admin_user).get("/api/review/agreement").json()
    rows = {r["reviewer"]: r for r in agreement["reviewers"]}
    assert rows["reviewer0"]["agreement"] == 1.0 and rows["reviewer0"]["gold_accuracy"] == 1.0
    assert rows["reviewer1"]["on_settled"] == 1 and rows["reviewer1"]["gold_votes"] == 1
    assert agreement["kappa_items"] == 2 and agreement["fleiss_kappa"] is not None
    # A reviewer: their own row, no gold figures, kappa over decided rounds (items[1] is still open).
    own = api_client(reviewers[0]).get("/api/review/agreement").json()
    assert [(r["reviewer"], r["agreement"]) for r in own["reviewers"]] == [("reviewer0", 1.0)]
    assert "gold_accuracy" not in own["reviewers"][0] and own["kappa_items"] == 1


def test_model_view_says_when_no_model_is_active(reviewer):
    item = ReviewItemFactory()
    review_item_next_for(user=reviewer)  # reviewers read the items leased to them
    body = api_client(reviewer).get(f"/api/review/items/{item.pk}/model").json()
    assert body["model_active"] is False and body["overlays"] == {}


def test_endpoints_are_in_the_openapi_schema(admin_user):
    response = api_client(admin_user).get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in ["/api/review/items/next", "/api/review/items/{item_id}/votes", "/api/review/votes/undo",
                 "/api/review/items/{item_id}/skip", "/api/review/items/{item_id}", "/api/review/stats",
                 "/api/review/agreement", "/api/review/export/kaggle.csv", "/api/review/export/history.csv"]:
        assert path in paths, path


def test_pages_render_for_reviewers(client, reviewer, researcher):
    client.force_login(reviewer)
    page = client.get("/review/")
    assert page.status_code == 200 and b"review/review.js" in page.content
    assert client.get("/review/reviewers/").status_code == 200
    client.force_login(researcher)
    assert client.get("/review/").status_code == 403


def test_model_view_never_computes_it_queues_the_missing_overlays(reviewer, django_capture_on_commit_callbacks,
                                                                   eager_tasks):
    from pathlib import Path

    from apps.inference.models import Explanation
    from apps.inference.services.registry import model_version_register

    default = Path(__file__).resolve().parents[2] / "ml" / "weights" / "default.pt"
    model_version_register(checkpoint_path=default, name="default", activate=True)
    item = ReviewItemFactory(suggested_label=5)
    review_item_next_for(user=reviewer)  # leased (by the service: the API would queue the overlays here already)
    client = api_client(reviewer)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        body = client.get(f"/api/review/items/{item.pk}/model").json()
    # The read computed nothing: no heatmap is stored, both are pending, and work was queued for a worker.
    assert body["model_active"] is True and body["model_version"]["name"] == "default"
    assert body["overlays"] == {} and body["pending"] == ["current", "suggestion"]
    assert Explanation.objects.count() == 0 and queued
    again = client.get(f"/api/review/items/{item.pk}/model").json()
    assert again["pending"] == ["current", "suggestion"] and Explanation.objects.count() == 0

    for callback in queued:  # what a worker does with the queued messages (run inline here)
        callback()
    body = client.get(f"/api/review/items/{item.pk}/model").json()
    assert body["pending"] == []
    assert body["overlays"]["current"]["label_name"] == "happy"
    assert body["overlays"]["suggestion"]["label_name"] == "surprise"
    assert body["overlays"]["current"]["url"].endswith(".png")
    assert set(Explanation.objects.values_list("target_label", flat=True)) >= {3, 5}


def test_a_reviewer_cannot_vote_on_or_skip_an_item_not_leased_to_them(reviewers, admin_user):
    """Anything not leased to you answers as a missing id does, so the answer tells nothing of the item's state
    (leased to someone else, settled, disputed, gold that never settles)."""
    free, others, settled, disputed = (ReviewItemFactory(priority=p) for p in (0.1, 0.2, 0.3, 0.4))
    gold = ReviewItemFactory(priority=0.5, is_gold=True, gold_label=2)
    review_item_next_for(user=reviewers[1], count=3)  # free, others and settled leased to reviewer1 ...
    ReviewItem.objects.filter(pk=free.pk).update(lease_holder=None, lease_expires_at=None)  # ... free let go
    ReviewItem.objects.filter(pk=settled.pk).update(status=ReviewItem.Status.SETTLED, settled_label=1)
    ReviewItem.objects.filter(pk=disputed.pk).update(status=ReviewItem.Status.DISPUTED)
    leased_to(gold, reviewers[1])
    api = api_client(reviewers[0])
    missing = error_body(api.post("/api/review/items/999999/votes", {"choice": 1}, format="json"))
    assert missing == {"code": "not_found", "detail": "no review item 999999"}
    for item in (free, others, settled, disputed, gold):
        vote = api.post(f"/api/review/items/{item.pk}/votes", {"choice": 1}, format="json")
        skip = api.post(f"/api/review/items/{item.pk}/skip")
        assert vote.status_code == skip.status_code == 404, (item, vote.status_code, skip.status_code)
        assert error_body(vote) == error_body(skip) == {**missing, "detail": f"no review item {item.pk}"}
    assert not Vote.objects.exists() and not Skip.objects.exists()
    assert ReviewItem.objects.get(pk=free.pk).lease_holder_id is None


def test_your_own_stored_vote_answers_already_voted(reviewers):
    """A vote sent again (the review page retries what it could not confirm) is 409 ``already_voted`` whatever
    became of the item since, so the page can count it as sent."""
    item = ReviewItemFactory()
    api = api_client(reviewers[0])
    review_item_next_for(user=reviewers[0])
    assert api.post(f"/api/review/items/{item.pk}/votes", {"choice": 4}, format="json").status_code == 201
    again = api.post(f"/api/review/items/{item.pk}/votes", {"choice": 4}, format="json")
    assert again.status_code == 409 and error_body(again)["code"] == "already_voted"
    review_item_next_for(user=reviewers[1])
    assert api_client(reviewers[1]).post(f"/api/review/items/{item.pk}/votes", {"choice": 4},
                                         format="json").status_code == 201  # settles it
    again = api.post(f"/api/review/items/{item.pk}/votes", {"choice": 5}, format="json")
    assert again.status_code == 409 and error_body(again)["code"] == "already_voted"
    assert list(Vote.objects.filter(reviewer=reviewers[0]).values_list("choice", flat=True)) == [4]


def test_an_admin_may_vote_on_any_open_item(reviewers, admin_user):
    item = ReviewItemFactory()
    response = api_client(admin_user).post(f"/api/review/items/{item.pk}/votes", {"choice": 2}, format="json")
    assert response.status_code == 201, response.content
    assert list(Vote.objects.values_list("item_id", "reviewer_id", "choice")) == [(item.pk, admin_user.pk, 2)]


def test_a_reviewer_whose_lease_ran_out_may_still_vote_and_skip(reviewers):
    voted, skipped = ReviewItemFactory(priority=0.1), ReviewItemFactory(priority=0.2)
    assert [i.pk for i in review_item_next_for(user=reviewers[0], count=2)] == [voted.pk, skipped.pk]
    ReviewItem.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))  # nobody took them since
    api = api_client(reviewers[0])
    assert api.post(f"/api/review/items/{voted.pk}/votes", {"choice": 2}, format="json").status_code == 201
    assert api.post(f"/api/review/items/{skipped.pk}/skip").status_code == 204
    assert list(Vote.objects.values_list("item_id", "reviewer_id")) == [(voted.pk, reviewers[0].pk)]
    assert list(Skip.objects.values_list("item_id", "reviewer_id")) == [(skipped.pk, reviewers[0].pk)]
    assert api.post(f"/api/review/items/{skipped.pk}/skip").status_code == 204  # skipping twice stays harmless
    # Once another reviewer has taken it, the old holder can no longer act on it.
    again = ReviewItemFactory(priority=0.3)
    review_item_next_for(user=reviewers[0])
    ReviewItem.objects.filter(pk=again.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert [i.pk for i in review_item_next_for(user=reviewers[1], count=3)] == [voted.pk, skipped.pk, again.pk]
    assert api.post(f"/api/review/items/{again.pk}/votes", {"choice": 2}, format="json").status_code == 404
    assert not Vote.objects.filter(item=again).exists()
