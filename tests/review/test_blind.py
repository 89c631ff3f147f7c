"""Blind review and gold items, observed the way a reviewer observes them: through the API and the pages.

- Nobody but an admin sees a round's votes (names or choices) before voting in that round: not in ``votes``, not in
  ``history``, not in agreement figures.
- A reviewer reads an item only while it is leased to them or after voting on it; otherwise it does not exist.
- Nothing a reviewer sees tells a gold item from another, and undoing a gold vote cannot retry a gold answer.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.db.models import F
from django.utils import timezone

from apps.faces.models import Split
from apps.review.choices import UNSURE
from apps.review.models import LabelScore, ReviewItem, ScoringRun, Vote
from tests.api_errors import error_body
from tests.faces.factories import FaceImageFactory
from tests.helpers import api_client

from .factories import ReviewItemFactory, leased_to

pytestmark = pytest.mark.django_db

PROBABILITIES = [0.05, 0.05, 0.1, 0.2, 0.1, 0.45, 0.05]


def vote(user, item_id: int, choice: int) -> dict:
    leased_to(ReviewItem.objects.get(pk=item_id), user)  # as if the queue had handed it out
    response = api_client(user).post(f"/api/review/items/{item_id}/votes", {"choice": choice}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def detail(user, item_id: int):
    return api_client(user).get(f"/api/review/items/{item_id}")


def undo_window_passes() -> None:
    """Age every vote by the undo window: none can be taken back any more, so their rounds' votes show."""
    Vote.objects.update(created_at=F("created_at") - timedelta(seconds=settings.REVIEW_UNDO_SECONDS + 1))


# --- blind votes in the item's detail and history -----------------------------------------------------------------

def test_history_after_an_undo_hides_the_rounds_remaining_votes(reviewers):
    item = ReviewItemFactory()
    r0, r1, r2 = reviewers[:3]
    vote(r0, item.pk, 4)
    vote(r1, item.pk, 4)  # settles
    assert api_client(r1).post("/api/review/votes/undo").status_code == 200  # reopens it, leased back to r1

    response = detail(r1, item.pk)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "reopened" and body["votes"] is None
    assert "reviewer0" not in response.content.decode()
    # The round is being voted on again: its settle-and-undo entries would tell reviewer0's choice.
    assert body["history"] == []

    vote(r1, item.pk, 5)  # reviewer1 votes in the round again ...
    assert detail(r1, item.pk).json()["votes"] is None  # ... which they may still take back: hidden
    undo_window_passes()  # now it is final: the round's votes are theirs to see
    body = detail(r1, item.pk).json()
    assert [(v["reviewer"], v["choice"]) for v in body["votes"]] == [("reviewer0", 4), ("reviewer1", 5)]
    assert [h["kind"] for h in body["history"]] == ["quorum", "undo"]
    assert [v["reviewer"] for v in body["history"][0]["votes"]] == ["reviewer0", "reviewer1"]

    served = api_client(r2).get("/api/review/items/next").json()["items"]
    assert [i["id"] for i in served] == [item.pk]
    response = detail(r2, item.pk)  # leased to reviewer2, who has not voted
    assert response.json()["votes"] is None and response.json()["history"] == []
    assert "reviewer0" not in response.content.decode() and "reviewer1" not in response.content.decode()


def test_history_after_a_reopen_hides_earlier_rounds_votes(reviewers, admin_user):
    item = ReviewItemFactory()
    r0, r1, r2 = reviewers[:3]
    vote(r0, item.pk, 4)
    vote(r1, item.pk, 4)
    assert api_client(admin_user).post(f"/api/review/items/{item.pk}/reopen").status_code == 200

    assert [i["id"] for i in api_client(r2).get("/api/review/items/next").json()["items"]] == [item.pk]
    response = detail(r2, item.pk)
    body = response.json()
    assert body["round"] == 2 and body["votes"] is None
    # Round 1 is decided (its outcome is the face's label), so its entries stay, without who chose what.
    assert [(h["kind"], h["new_label"]) for h in body["history"]] == [("quorum", 4), ("reopen", 4)]
    assert all(h["votes"] is None for h in body["history"])
    text = response.content.decode()
    assert "reviewer0" not in text and "reviewer1" not in text

    vote(r2, item.pk, 6)
    undo_window_passes()
    response = detail(r0, item.pk)  # voted in round 1, not in round 2
    body = response.json()
    assert body["votes"] is None and "reviewer2" not in response.content.decode()
    assert [v["reviewer"] for v in body["history"][0]["votes"]] == ["reviewer0", "reviewer1"]

    body = detail(admin_user, item.pk).json()  # admins see every round
    assert [v["reviewer"] for v in body["votes"]] == ["reviewer2"]
    assert [v["reviewer"] for v in body["history"][0]["votes"]] == ["reviewer0", "reviewer1"]


def test_a_reviewer_reads_only_items_leased_to_them_or_voted_on(reviewers, admin_user):
    mine, other = ReviewItemFactory(priority=0.1), ReviewItemFactory(priority=0.2)
    r0, r1 = reviewers[:2]
    api = api_client(r0)
    assert [i["id"] for i in api.get("/api/review/items/next").json()["items"]] == [mine.pk]

    assert detail(r0, mine.pk).status_code == 200
    hidden, missing = detail(r0, other.pk), detail(r0, 999999)
    assert hidden.status_code == missing.status_code == 404
    # The same answer as for an id that does not exist: the item's existence is not revealed.
    assert error_body(hidden) == {"code": "not_found", "detail": f"no review item {other.pk}"}
    assert error_body(missing) == {"code": "not_found", "detail": "no review item 999999"}
    assert api.get(f"/api/review/items/{other.pk}/model").status_code == 404
    assert detail(r1, mine.pk).status_code == 404  # leased to reviewer0
    assert detail(admin_user, other.pk).status_code == 200

    vote(r0, mine.pk, 2)  # the lease ends with the vote; the vote keeps the item readable
    assert detail(r0, mine.pk).status_code == 200
    ReviewItem.objects.filter(pk=other.pk).update(lease_holder=r1,
                                                  lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert detail(r1, other.pk).status_code == 404  # an expired lease is no lease


# --- agreement, stats and the reviewers page ----------------------------------------------------------------------

def _gold(admin_user, label: int = 3) -> int:
    """A gold item on a new scored Training face (the only faces that may be gold), through the API."""
    face = FaceImageFactory()
    _score(face)
    response = api_client(admin_user).post("/api/review/gold", {"face": face.pk, "label": label}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def test_gold_figures_are_for_admins_only(reviewers, admin_user, client):
    gold = _gold(admin_user, 3)
    vote(reviewers[0], gold, 3)

    response = api_client(reviewers[0]).get("/api/review/agreement")
    assert "gold" not in response.content.decode()
    assert [r["reviewer"] for r in response.json()["reviewers"]] == ["reviewer0"]
    rows = {r["reviewer"]: r for r in api_client(admin_user).get("/api/review/agreement").json()["reviewers"]}
    assert rows["reviewer0"]["gold_votes"] == 1 and rows["reviewer0"]["gold_accuracy"] == 1.0

    assert api_client(reviewers[0]).get("/api/review/stats").json()["gold"] is None
    assert api_client(admin_user).get("/api/review/stats").json()["gold"] == 1

    client.force_login(reviewers[0])
    assert "gold" not in client.get("/review/reviewers/").content.decode().lower()
    client.force_login(admin_user)
    page = client.get("/review/reviewers/").content.decode()
    assert "gold accuracy" in page and 'data-reviewer="reviewer0"' in page


def test_agreement_shows_a_reviewer_no_choices_of_open_rounds(reviewers, admin_user, client):
    live = ReviewItemFactory()
    vote(reviewers[0], live.pk, UNSURE)
    vote(reviewers[1], live.pk, 2)
    vote(reviewers[2], live.pk, 5)  # two counted votes that disagree: still open

    body = api_client(reviewers[3]).get("/api/review/agreement").json()
    assert body["reviewers"] == []  # reviewer3 has no votes; the others' rows are not theirs to see
    assert body["kappa_items"] == 0  # an open round's votes do not move the figures reviewers see
    body = api_client(reviewers[1]).get("/api/review/agreement").json()
    assert [(r["reviewer"], r["unsure"]) for r in body["reviewers"]] == [("reviewer1", 0)]
    admin = api_client(admin_user).get("/api/review/agreement").json()
    assert admin["kappa_items"] == 1 and {r["reviewer"]: r["unsure"] for r in admin["reviewers"]}["reviewer0"] == 1

    client.force_login(reviewers[1])
    page = client.get("/review/reviewers/").content.decode()
    assert 'data-reviewer="reviewer1"' in page and "reviewer0" not in page and "reviewer2" not in page


# --- gold items look like any other ---------------------------------------------------------------------------------

def _score(face) -> LabelScore:
    run = ScoringRun.objects.create(status=ScoringRun.Status.SUCCEEDED)
    return LabelScore.objects.create(run=run, face=face, given_label=face.current_label, quality=0.2, is_issue=True,
                                     suggested_label=5, suggested_probability=0.45, probabilities=PROBABILITIES)


def _scored_item() -> ReviewItem:
    item = ReviewItemFactory(suggested_label=5, suggested_probability=0.45)
    item.score = _score(item.face)
    item.save(update_fields=["score"])
    return item


# Values that belong to the face or the moment, not to what kind of item it is.
PER_ITEM = {"id", "item", "face", "image", "lease_expires_at", "created_at", "at", "settled_at"}


def _shape(value):
    """A response with the per-item values blanked: what is left must not differ between gold and other items."""
    if isinstance(value, dict):
        return {k: "·" if k in PER_ITEM and not isinstance(v, (dict, list)) else _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return value


def _observe(api, item_id: int, choice: int) -> dict:
    """Everything the reviewer sees around one vote on the item and its undo."""
    seen = {"before": api.get("/api/review/items/next", {"count": 3}).json()}
    seen["before"]["items"] = [i for i in seen["before"]["items"] if i["id"] == item_id]
    seen["detail_before"] = api.get(f"/api/review/items/{item_id}").json()
    seen["vote"] = api.post(f"/api/review/items/{item_id}/votes", {"choice": choice}, format="json").json()
    seen["detail"] = api.get(f"/api/review/items/{item_id}").json()
    seen["stats"] = api.get("/api/review/stats").json()
    seen["agreement"] = api.get("/api/review/agreement").json()
    seen["undo"] = api.post("/api/review/votes/undo").json()
    seen["detail_after"] = api.get(f"/api/review/items/{item_id}").json()
    seen["agreement_after"] = api.get("/api/review/agreement").json()
    seen["stats"].pop("last_scoring_run")
    return _shape(seen)


def test_a_gold_item_and_its_undo_look_like_any_other_item(reviewers, admin_user):
    regular = _scored_item()
    gold = _gold(admin_user, 5)
    for other in reviewers[1:3]:  # on a regular item these two would have settled it
        vote(other, gold, 5)
    api = api_client(reviewers[0])
    # Leased together (gold items fill the slots that regular ones leave, at a random place among them).
    assert {i["id"] for i in api.get("/api/review/items/next", {"count": 2}).json()["items"]} == {regular.pk, gold}

    seen_regular = _observe(api, regular.pk, 5)
    seen_gold = _observe(api, gold, 5)
    assert seen_gold == seen_regular
    assert seen_gold["vote"]["item_status"] == "open" and seen_gold["detail"]["gold_label"] is None
    assert seen_gold["detail"]["votes"] is None  # a vote that can still be taken back shows no votes
    assert seen_gold["undo"]["item_status"] == "open"

    for item_id in (regular.pk, gold):  # leased back by the undo: vote again, for good this time
        assert api.post(f"/api/review/items/{item_id}/votes", {"choice": 5}, format="json").status_code == 201
    undo_window_passes()
    regular_votes, gold_votes = (detail(reviewers[0], pk).json()["votes"] for pk in (regular.pk, gold))
    # On a gold item a reviewer sees only their own vote: the others' would pile up past a quorum that never settles.
    assert _shape(gold_votes) == _shape(regular_votes) and [v["reviewer"] for v in gold_votes] == ["reviewer0"]


def test_undo_cannot_retry_a_gold_answer(reviewers, admin_user):
    gold = _gold(admin_user, 5)
    vote(reviewers[0], gold, 2)  # wrong
    assert api_client(reviewers[0]).post("/api/review/votes/undo").status_code == 200
    vote(reviewers[0], gold, 5)  # right, second time
    rows = {r["reviewer"]: r for r in api_client(admin_user).get("/api/review/agreement").json()["reviewers"]}
    assert rows["reviewer0"]["gold_votes"] == 1 and rows["reviewer0"]["gold_accuracy"] == 0.0  # the first answer


# --- a round's votes show only once the reader's counted vote is final ----------------------------------------------

def test_unsure_then_undo_cannot_read_the_rounds_votes(reviewers):
    """The reported bypass: vote "unsure", read everyone's votes, undo, vote again with them in view."""
    item = ReviewItemFactory()
    r0, r1 = reviewers[:2]
    vote(r0, item.pk, 4)
    undo_window_passes()
    api = api_client(r1)
    assert [i["id"] for i in api.get("/api/review/items/next").json()["items"]] == [item.pk]
    assert api.post(f"/api/review/items/{item.pk}/votes", {"choice": UNSURE}, format="json").status_code == 201
    undo_window_passes()  # even a final "unsure" is no counted vote: it shows nothing
    response = detail(r1, item.pk)
    assert response.json()["votes"] is None and "reviewer0" not in response.content.decode()


def test_a_counted_vote_shows_the_rounds_votes_only_once_it_can_no_longer_be_taken_back(reviewers):
    item = ReviewItemFactory()
    r0, r1 = reviewers[:2]
    vote(r0, item.pk, 4)
    undo_window_passes()
    api = api_client(r1)
    vote(r1, item.pk, 5)
    response = detail(r1, item.pk)  # within the undo window: it could still be changed after a look
    assert response.json()["votes"] is None and "reviewer0" not in response.content.decode()
    assert api.post("/api/review/votes/undo").status_code == 200  # nothing was shown: undo is still allowed
    vote(r1, item.pk, 5)
    undo_window_passes()
    assert [(v["reviewer"], v["choice"]) for v in detail(r1, item.pk).json()["votes"]] == [("reviewer0", 4),
                                                                                         ("reviewer1", 5)]
    refused = api.post("/api/review/votes/undo")  # the round's votes are in view: the vote stands
    assert refused.status_code == 409 and error_body(refused)["code"] == "vote_final"
    assert Vote.objects.filter(item=item, reviewer=r1, choice=5).exists()


def test_a_gold_answer_is_the_first_counted_answer(reviewers, admin_user):
    """Voting "unsure" first, undoing and then answering cannot keep a reviewer from being scored on gold."""
    gold = _gold(admin_user, 5)
    api = api_client(reviewers[0])
    vote(reviewers[0], gold, UNSURE)
    assert api.post("/api/review/votes/undo").status_code == 200
    vote(reviewers[0], gold, 2)  # wrong
    rows = {r["reviewer"]: r for r in api_client(admin_user).get("/api/review/agreement").json()["reviewers"]}
    assert rows["reviewer0"]["gold_votes"] == 1 and rows["reviewer0"]["gold_accuracy"] == 0.0


# --- gold items: only scored Training faces, served like any other item --------------------------------------------

def test_gold_faces_come_only_from_scored_training_faces(admin_user, reviewers):
    api = api_client(admin_user)
    refused = {"unscored Training": FaceImageFactory(), "PublicTest": FaceImageFactory(split=Split.PUBLIC_TEST),
               "PrivateTest": FaceImageFactory(split=Split.PRIVATE_TEST),
               "upload": FaceImageFactory(split=Split.UPLOAD, original_label=None, source_row=None),
               "excluded Training": FaceImageFactory(excluded=True)}
    _score(refused["PublicTest"])  # scores exist only for Training faces; even one that slipped in is refused
    _score(refused["excluded Training"])
    for kind, face in refused.items():
        response = api.post("/api/review/gold", {"face": face.pk, "label": 3}, format="json")
        assert response.status_code == 400, (kind, response.status_code)
        assert error_body(response)["code"] == "invalid"
    assert not ReviewItem.objects.exists()
    assert api_client(reviewers[0]).get("/api/review/items/next", {"count": 3}).json()["items"] == []
    assert api.post("/api/review/gold", {"face": 999999, "label": 3}, format="json").status_code == 404
    scored = FaceImageFactory()
    _score(scored)
    assert api.post("/api/review/gold", {"face": scored.pk, "label": 3}, format="json").status_code == 201


def _json_type(value) -> str:
    return type(value).__name__ if not isinstance(value, list) else f"list[{','.join(map(_json_type, value[:1]))}]"


def test_a_reviewer_is_served_gold_and_regular_items_alike(reviewers, admin_user, settings):
    """What a reviewer computes from what they are served: every field's presence and type, and the order statistic
    that gave gold away (regular items came in ascending order of p[current label], gold ones at random)."""
    settings.REVIEW_PREFETCH = 3
    run = ScoringRun.objects.create(status=ScoringRun.Status.SUCCEEDED)
    gold = set()
    for i in range(12):  # qualities 0.02 .. 0.24; even ones regular, odd ones gold, interleaved in the ranking
        face = FaceImageFactory()
        quality = round(0.02 * (i + 1), 2)
        rest = (1 - quality) / 6
        score = LabelScore.objects.create(run=run, face=face, given_label=3, quality=quality, is_issue=True,
                                          suggested_label=5, suggested_probability=rest,
                                          probabilities=[quality if c == 3 else rest for c in range(7)])
        if i % 2:
            gold.add(_gold_of(admin_user, face.pk))
        else:
            ReviewItem.objects.create(face=face, score=score, priority=quality, suggested_label=5,
                                      suggested_probability=rest)
    api = api_client(reviewers[0])
    served = []
    while items := api.get("/api/review/items/next", {"count": 3}).json()["items"]:
        served += items
        for item in items:
            assert api.post(f"/api/review/items/{item['id']}/votes", {"choice": 2}, format="json").status_code == 201
    assert len(served) == 12 and {i["id"] for i in served} >= gold

    def fields(kind: bool) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for item in served:
            if (item["id"] in gold) == kind:
                for key, value in item.items():
                    out.setdefault(key, set()).add(_json_type(value))
        return out

    assert fields(True) == fields(False)

    def in_order(kind: bool) -> float:
        """Share of this kind's items (after the first served) whose p[current label] is not below the previous
        served item's."""
        p = [item["probabilities"][item["current_label"]] for item in served]
        steps = [p[k] >= p[k - 1] for k in range(1, len(served)) if (served[k]["id"] in gold) == kind]
        return sum(steps) / len(steps)

    assert in_order(True) == in_order(False) == 1.0


def _gold_of(admin_user, face_id: int, label: int = 5) -> int:
    response = api_client(admin_user).post("/api/review/gold", {"face": face_id, "label": label}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def test_stats_count_gold_items_like_any_other(reviewers, admin_user):
    _scored_item()
    _scored_item()
    _gold(admin_user)
    stats = api_client(reviewers[0]).get("/api/review/stats").json()
    # progress counts gold items (a vote moves it the same way on any item), so the open counts must too
    assert stats["open"] + stats["reopened"] == stats["progress"]["items_left"] == 3


def test_one_undo_per_item_and_round_so_the_outcome_cannot_be_probed(reviewers):
    """A vote's answer tells whether it settled the item; undoing and voting again until it does would find the other
    reviewer's choice. One undo per item and round leaves a slip of the key correctable and the probe two tries."""
    item = ReviewItemFactory()
    r0, r1 = reviewers[:2]
    vote(r0, item.pk, 4)
    undo_window_passes()
    api = api_client(r1)
    assert vote(r1, item.pk, 2)["item_status"] == "open"
    assert api.post("/api/review/votes/undo").status_code == 200
    assert vote(r1, item.pk, 3)["item_status"] == "open"
    refused = api.post("/api/review/votes/undo")
    assert refused.status_code == 409 and error_body(refused)["code"] == "undo_used"
    assert list(Vote.objects.filter(item=item).values_list("reviewer", "choice")) == [(r0.pk, 4), (r1.pk, 3)]
