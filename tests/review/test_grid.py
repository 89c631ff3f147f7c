"""Grid review on PostgreSQL: a page of faces sharing a label, every face a vote through the one vote service."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.review.choices import NOT_A_FACE, UNSURE
from apps.review.grid import GRID_LEASES_MAX, GridMark, review_grid_lease, review_grid_page_submit
from apps.review.models import GoldAnswer, LabelHistory, ReviewItem, Vote
from tests.api_errors import error_body
from tests.helpers import api_client

from .factories import ReviewItemFactory
from .test_concurrency import _race

pytestmark = pytest.mark.django_db

HAPPY, SAD, SURPRISE = 3, 4, 5


def items_labelled(label: int, n: int, start: float = 0.0, **kwargs) -> list[ReviewItem]:
    return [ReviewItemFactory(face__original_label=label, priority=start + i / 100, **kwargs) for i in range(n)]


def page_ids(user, **kwargs) -> list[int]:
    return [item.pk for item in review_grid_lease(user=user, size=24, **kwargs).items]


def unmarked(ids) -> list[GridMark]:
    return [GridMark(item_id=pk) for pk in ids]


# --- leasing a page -------------------------------------------------------------------------------------------------

def test_a_page_holds_the_label_with_most_faces_in_queue_order_and_leases_them(reviewers):
    sad = items_labelled(SAD, 3)
    happy = items_labelled(HAPPY, 5, start=0.5)
    page = review_grid_lease(user=reviewers[0], size=24)
    assert page.label == HAPPY
    assert [i.pk for i in page.items] == [i.pk for i in happy]  # priority order; the sad faces stay out
    assert page.labels == [(HAPPY, 5), (SAD, 3)]
    leased = set(ReviewItem.objects.filter(lease_holder=reviewers[0], lease_expires_at__gt=timezone.now())
                 .values_list("pk", flat=True))
    assert leased == {i.pk for i in happy}
    assert not ReviewItem.objects.filter(pk__in=[i.pk for i in sad], lease_holder__isnull=False).exists()


def test_the_reviewer_may_choose_the_label_and_the_page_size_is_capped(reviewers):
    items_labelled(HAPPY, 30)
    sad = items_labelled(SAD, 2)
    assert page_ids(reviewers[0], label=SAD) == [i.pk for i in sad]
    assert len(page_ids(reviewers[1], label=HAPPY)) == 24
    with pytest.raises(Exception, match="size must be 24-48"):
        review_grid_lease(user=reviewers[2], size=49)


def test_a_reload_gets_the_same_page_and_another_reviewer_gets_other_faces(reviewers):
    items_labelled(HAPPY, 30)
    first = page_ids(reviewers[0])
    assert page_ids(reviewers[0]) == first  # held faces of the label come back first, in the same order
    second = page_ids(reviewers[1])
    assert len(second) == 6 and not set(second) & set(first)
    assert page_ids(reviewers[2]) == []  # everything is leased


def test_without_a_label_the_page_of_faces_held_comes_back(reviewers):
    items_labelled(HAPPY, 5)
    sad = items_labelled(SAD, 2, start=0.9)
    assert page_ids(reviewers[0], label=SAD) == [i.pk for i in sad]
    page = review_grid_lease(user=reviewers[0], size=24)  # happy has more faces, but sad is the page being worked
    assert page.label == SAD and [i.pk for i in page.items] == [i.pk for i in sad]


def test_one_reviewer_never_holds_more_than_the_lease_cap(reviewers):
    items_labelled(HAPPY, 48)
    items_labelled(SAD, 10, start=1.0)
    assert len(review_grid_lease(user=reviewers[0], size=40, label=HAPPY).items) == 40
    assert len(page_ids(reviewers[0], label=SAD)) == GRID_LEASES_MAX - 40
    assert ReviewItem.objects.filter(lease_holder=reviewers[0]).count() == GRID_LEASES_MAX


def test_voted_skipped_and_closed_faces_are_left_out(reviewers):
    voted, skipped, settled, fresh = items_labelled(HAPPY, 4)
    ReviewItem.objects.filter(pk=settled.pk).update(status=ReviewItem.Status.SETTLED)
    Vote.objects.create(item=voted, reviewer=reviewers[0], choice=HAPPY)
    from apps.review.models import Skip

    Skip.objects.create(item=skipped, reviewer=reviewers[0])
    assert page_ids(reviewers[0]) == [fresh.pk]
    assert set(page_ids(reviewers[1])) == {voted.pk, skipped.pk}


# --- submitting a page ----------------------------------------------------------------------------------------------

def test_unmarked_faces_confirm_the_label_and_marked_ones_vote_their_class(reviewers):
    a, b, c = items_labelled(HAPPY, 3)
    page_ids(reviewers[0])
    results = review_grid_page_submit(user=reviewers[0], label=HAPPY, marks=[
        GridMark(a.pk), GridMark(b.pk, SURPRISE), GridMark(c.pk, NOT_A_FACE)])
    assert [(r.item_id, r.choice, r.result) for r in results] == [
        (a.pk, HAPPY, "recorded"), (b.pk, SURPRISE, "recorded"), (c.pk, NOT_A_FACE, "recorded")]
    assert dict(Vote.objects.filter(reviewer=reviewers[0]).values_list("item_id", "choice")) == {
        a.pk: HAPPY, b.pk: SURPRISE, c.pk: NOT_A_FACE}
    assert not ReviewItem.objects.filter(lease_holder__isnull=False).exists()  # every lease is released


def test_two_reviewers_pages_settle_items_by_the_quorum(reviewers):
    a, b, c = items_labelled(HAPPY, 3)
    for reviewer, c_choice in ((reviewers[0], SAD), (reviewers[1], UNSURE)):
        assert set(page_ids(reviewer)) == {a.pk, b.pk, c.pk}
        results = review_grid_page_submit(user=reviewer, label=HAPPY, marks=[
            GridMark(a.pk), GridMark(b.pk, SURPRISE), GridMark(c.pk, c_choice)])
        assert all(r.stored for r in results)
    a.refresh_from_db(), b.refresh_from_db(), c.refresh_from_db()
    assert (a.status, a.settled_label, a.face.current_label) == ("settled", HAPPY, HAPPY)
    assert (b.status, b.settled_label) == ("settled", SURPRISE)
    b.face.refresh_from_db()
    assert (b.face.current_label, b.face.original_label) == (SURPRISE, HAPPY)
    assert LabelHistory.objects.get(item=b).new_label == SURPRISE
    assert c.status == "open"  # one counted vote and one "unsure": no quorum yet
    assert results[1].item_status == "settled" and results[1].settled_label == SURPRISE


def test_gold_faces_come_in_looking_like_the_others_and_never_settle(reviewers):
    plain = items_labelled(HAPPY, 2)
    gold = ReviewItemFactory(face__original_label=HAPPY, priority=0.005, is_gold=True, gold_label=SAD)
    for n, reviewer in enumerate(reviewers[:3]):
        response = api_client(reviewer).get("/api/review/grid/page", {"size": 24})
        body = response.json()
        expected = [plain[0].pk, gold.pk, plain[1].pk] if n < 2 else [gold.pk]  # the plain ones settled by then
        assert [i["id"] for i in body["items"]] == expected  # placed by its own score
        keys = {frozenset(i) for i in body["items"]}
        assert len(keys) == 1 and not {"gold_label", "is_gold", "votes", "quality"} & set(next(iter(keys)))
        marks = [{"item": pk} for pk in expected]
        results = api_client(reviewer).post("/api/review/grid/votes", {"label": HAPPY, "items": marks},
                                            format="json").json()["results"]
        gold_result = next(r for r in results if r["item"] == gold.pk)
        assert gold_result["result"] == "recorded" and gold_result["settled_label"] is None
    gold.refresh_from_db()
    assert gold.status == "open" and gold.face.current_label == HAPPY
    assert GoldAnswer.objects.filter(item=gold).count() == 3
    assert not LabelHistory.objects.filter(item=gold).exists()


def test_the_page_answer_shows_no_other_reviewers_votes(reviewers):
    items_labelled(HAPPY, 2)
    page_ids(reviewers[0])
    ids = [i.pk for i in review_grid_lease(user=reviewers[0], size=24).items]
    review_grid_page_submit(user=reviewers[0], label=HAPPY, marks=[GridMark(ids[0], SAD), GridMark(ids[1])])
    body = api_client(reviewers[1]).get("/api/review/grid/page").json()
    assert body["label"] == HAPPY and [i["id"] for i in body["items"]] == ids
    assert all(set(i) == {"id", "face", "image", "current_label", "suggested_label", "suggested_label_name",
                          "suggested_probability", "lease_expires_at"} for i in body["items"])


def test_a_page_submitted_twice_counts_once(reviewers):
    a, b = items_labelled(HAPPY, 2)
    page_ids(reviewers[0])
    marks = {"label": HAPPY, "items": [{"item": a.pk}, {"item": b.pk, "choice": SAD}]}
    client = api_client(reviewers[0])
    first = client.post("/api/review/grid/votes", marks, format="json")
    again = client.post("/api/review/grid/votes", marks, format="json")
    assert first.status_code == again.status_code == 200
    assert [r["result"] for r in first.json()["results"]] == ["recorded", "recorded"]
    assert [r["result"] for r in again.json()["results"]] == ["already_voted", "already_voted"]
    assert first.json()["stored"] == again.json()["stored"] == 2
    assert Vote.objects.count() == 2


def test_faces_not_leased_to_the_reviewer_are_refused_and_tell_nothing(reviewers):
    mine, theirs = items_labelled(HAPPY, 2)
    other_label = items_labelled(SAD, 1, start=0.9)[0]
    assert page_ids(reviewers[1], label=HAPPY) == [mine.pk, theirs.pk]
    ReviewItem.objects.filter(pk=mine.pk).update(lease_holder=reviewers[0])
    results = review_grid_page_submit(user=reviewers[0], label=HAPPY, marks=unmarked([mine.pk, theirs.pk,
                                                                                        other_label.pk, 10 ** 9]))
    # Another reviewer's face, a face of another label not leased to anyone and a missing id: the same answer.
    assert [r.result for r in results] == ["recorded", "not_found", "not_found", "not_found"]
    assert ReviewItem.objects.get(pk=theirs.pk).lease_holder == reviewers[1]


def test_an_unmarked_face_whose_label_changed_gets_no_vote(reviewers):
    a, b = items_labelled(HAPPY, 2)
    page_ids(reviewers[0])
    a.face.current_label = SAD
    a.face.save(update_fields=["current_label"])
    results = review_grid_page_submit(user=reviewers[0], label=HAPPY, marks=unmarked([a.pk, b.pk]))
    assert [r.result for r in results] == ["label_changed", "recorded"]
    assert list(Vote.objects.values_list("item_id", flat=True)) == [b.pk]


def test_an_expired_lease_still_takes_the_page_while_nobody_took_the_faces(reviewers):
    a, b = items_labelled(HAPPY, 2)
    page_ids(reviewers[0])
    ReviewItem.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))  # the page was sent late
    assert page_ids(reviewers[1]) == [a.pk, b.pk]  # ...and now another reviewer holds them
    ReviewItem.objects.filter(pk=a.pk).update(lease_holder=reviewers[0])  # a still the first reviewer's
    results = review_grid_page_submit(user=reviewers[0], label=HAPPY, marks=unmarked([a.pk, b.pk]))
    assert [r.result for r in results] == ["recorded", "not_found"]


def test_bad_pages_are_clear_400s(reviewers):
    a = items_labelled(HAPPY, 1)[0]
    client = api_client(reviewers[0])
    for body in ({"label": 7, "items": [{"item": a.pk}]}, {"label": HAPPY, "items": []},
                 {"label": HAPPY, "items": [{"item": a.pk}, {"item": a.pk}]},
                 {"label": HAPPY, "items": [{"item": a.pk, "choice": 9}]},
                 {"label": HAPPY, "items": [{"item": i} for i in range(1, 50)]}):
        response = client.post("/api/review/grid/votes", body, format="json")
        assert response.status_code == 400, (body, response.content)
        error_body(response)
    for query in ({"size": 23}, {"size": 49}, {"label": 7}, {"label": "x"}):
        response = client.get("/api/review/grid/page", query)
        assert response.status_code == 400, query
        error_body(response)
    assert not Vote.objects.exists()


def test_researchers_and_anonymous_cannot_use_the_grid(researcher):
    assert api_client(researcher).get("/api/review/grid/page").status_code == 403
    assert api_client().post("/api/review/grid/votes", {}, format="json").status_code == 401


def test_the_grid_page_renders_with_its_urls_and_keys(client, reviewers):
    client.force_login(reviewers[0])
    html = client.get("/review/grid/").content.decode()
    assert 'data-page-url="/api/review/grid/page"' in html and 'data-votes-url="/api/review/grid/votes"' in html
    assert 'href="/review/"' in html  # the way back to one-by-one review
    assert "<kbd>9</kbd> unsure" in html


# --- races -------------------------------------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_two_reviewers_racing_for_pages_never_share_a_face(reviewers):
    items_labelled(HAPPY, 30)
    for _ in range(3):
        ReviewItem.objects.update(lease_holder=None, lease_expires_at=None)
        got = _race(2, lambda i: page_ids(reviewers[i], label=HAPPY))
        assert all(isinstance(g, list) for g in got), got
        assert sorted(len(g) for g in got) == [6, 24] and not set(got[0]) & set(got[1])


@pytest.mark.django_db(transaction=True)
def test_two_pages_with_the_last_votes_arriving_together_settle_each_face_once(reviewers, admin_user):
    ids = [i.pk for i in items_labelled(HAPPY, 4)]
    assert page_ids(reviewers[0]) == ids
    review_grid_page_submit(user=reviewers[0], label=HAPPY, marks=[GridMark(ids[0], SAD), *unmarked(ids[1:])])
    assert page_ids(reviewers[1]) == ids  # one vote short of the quorum on every face
    voters = [reviewers[1], admin_user]  # an admin may vote on any open item: both pages race for the same rows
    marks = [GridMark(ids[0], SAD), *unmarked(ids[1:])]
    got = _race(2, lambda i: review_grid_page_submit(user=voters[i], label=HAPPY, marks=marks))
    assert all(isinstance(g, list) for g in got), got
    for first, second in zip(got[0], got[1], strict=True):  # per face: one vote counted, the late one refused
        assert sorted([first.result, second.result]) in (["conflict", "recorded"], ["not_found", "recorded"])
    assert LabelHistory.objects.filter(kind="quorum").count() == 4  # each face settled exactly once
    assert ReviewItem.objects.filter(status="settled").count() == 4
    assert Vote.objects.count() == 8


def test_the_schema_declares_both_operations_with_their_bodies(admin_user):
    schema = api_client(admin_user).get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    page, votes = schema["paths"]["/api/review/grid/page"]["get"], schema["paths"]["/api/review/grid/votes"]["post"]
    assert {p["name"] for p in page["parameters"]} == {"size", "label"}
    assert {"200", "400"} <= set(page["responses"]) and {"200", "400"} <= set(votes["responses"])
    submit = schema["components"]["schemas"]["GridSubmit"]
    assert set(submit["required"]) == {"label", "items"}
    result = schema["components"]["schemas"]["GridVoteResult"]["properties"]
    assert {"item", "choice", "result", "stored", "item_status", "settled_label"} == set(result)
