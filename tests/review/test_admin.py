"""The Django admin changes labels, item states and votes only through the review services: every label change leaves
a LabelHistory row (who, when, old, new), and an undo cannot silently overwrite an admin's decision."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.review.choices import Choice
from apps.review.models import LabelHistory, ReviewItem, Vote
from tests.admin_forms import change_form_post
from tests.api_errors import error_body
from tests.helpers import api_client

from .factories import ReviewItemFactory, leased_to

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:review_reviewitem_changelist"


def settled_by_quorum(reviewers, choice: int = 4) -> ReviewItem:
    item = ReviewItemFactory()  # face labelled 3 (happy)
    for reviewer in reviewers[:2]:
        leased_to(item, reviewer)
        response = api_client(reviewer).post(f"/api/review/items/{item.pk}/votes", {"choice": choice}, format="json")
        assert response.status_code == 201, response.content
    item.refresh_from_db()
    assert item.status == ReviewItem.Status.SETTLED
    return item


def admin_action(client, action: str, items, **extra):
    return client.post(reverse(CHANGELIST), {"action": action, "_selected_action": [i.pk for i in items], **extra},
                       follow=True)


def test_item_status_and_settled_label_cannot_be_edited_in_the_admin(client, admin_user, reviewers):
    item = settled_by_quorum(reviewers)
    client.force_login(admin_user)

    change_form_post(client, reverse("admin:review_reviewitem_change", args=[item.pk]),
                     status=ReviewItem.Status.OPEN, settled_label=1, round=5)

    item.refresh_from_db()
    assert (item.status, item.settled_label, item.round) == (ReviewItem.Status.SETTLED, 4, 1)
    assert client.get(reverse("admin:review_reviewitem_add")).status_code == 403


def test_votes_cannot_be_added_changed_or_deleted_in_the_admin(client, admin_user, reviewers):
    item = settled_by_quorum(reviewers)
    vote = Vote.objects.filter(item=item).first()
    client.force_login(admin_user)

    change_form_post(client, reverse("admin:review_vote_change", args=[vote.pk]), choice=1)
    client.post(reverse("admin:review_vote_delete", args=[vote.pk]), {"post": "yes"})

    vote.refresh_from_db()
    assert vote.choice == 4
    assert client.get(reverse("admin:review_vote_add")).status_code == 403


def test_label_history_cannot_be_rewritten_in_the_admin(client, admin_user, reviewers):
    item = settled_by_quorum(reviewers)
    entry = LabelHistory.objects.get(item=item)
    client.force_login(admin_user)

    change_form_post(client, reverse("admin:review_labelhistory_change", args=[entry.pk]), new_label=0)
    client.post(reverse("admin:review_labelhistory_delete", args=[entry.pk]), {"post": "yes"})

    entry.refresh_from_db()
    assert entry.new_label == 4


def test_admin_decides_items_through_the_service_and_the_change_is_recorded(client, admin_user, reviewers):
    item = settled_by_quorum(reviewers)
    open_item = ReviewItemFactory()
    client.force_login(admin_user)

    page = admin_action(client, "decide_selected", [item, open_item], choice=Choice.NOT_A_FACE)

    assert page.status_code == 200 and "2 item(s) decided as not a face" in page.content.decode()
    decided = LabelHistory.objects.filter(kind=LabelHistory.Kind.ADMIN).order_by("item_id")
    assert [(h.item_id, h.actor, h.old_label, h.new_label, h.old_excluded, h.new_excluded) for h in decided] == [
        (item.pk, admin_user, 4, 4, False, True), (open_item.pk, admin_user, 3, 3, False, True)]
    item.refresh_from_db()
    assert item.settled_by_admin == admin_user and item.face.excluded


def test_deciding_without_a_label_or_on_a_gold_item_says_why_and_changes_nothing(client, admin_user):
    item, gold = ReviewItemFactory(), ReviewItemFactory(is_gold=True, gold_label=2)
    client.force_login(admin_user)

    assert "Choose the label" in admin_action(client, "decide_selected", [item]).content.decode()
    page = admin_action(client, "decide_selected", [gold], choice=2).content.decode()

    assert f"Item {gold.pk}: gold items do not settle" in page  # the admin capitalises messages
    assert not LabelHistory.objects.exists()
    assert ReviewItem.objects.filter(status=ReviewItem.Status.OPEN).count() == 2


def test_an_undo_after_the_admin_decided_is_refused_and_keeps_the_admins_label(client, admin_user, reviewers):
    item = settled_by_quorum(reviewers)
    client.force_login(admin_user)
    admin_action(client, "decide_selected", [item], choice=1)

    response = api_client(reviewers[1]).post("/api/review/votes/undo")

    assert response.status_code == 409 and error_body(response)["code"] == "conflict"
    item.refresh_from_db()
    assert item.face.current_label == 1 and item.status == ReviewItem.Status.SETTLED
    assert list(item.history.values_list("kind", flat=True)) == [LabelHistory.Kind.QUORUM, LabelHistory.Kind.ADMIN]


def test_admin_reopens_through_the_service_and_an_old_vote_can_no_longer_be_undone(client, admin_user, reviewers):
    item = settled_by_quorum(reviewers)
    client.force_login(admin_user)

    page = admin_action(client, "reopen_selected", [item])

    assert "1 item(s) reopened" in page.content.decode()
    item.refresh_from_db()
    assert (item.status, item.round, item.face.current_label) == (ReviewItem.Status.REOPENED, 2, 4)
    assert item.history.last().kind == LabelHistory.Kind.REOPEN and item.history.last().actor == admin_user
    assert api_client(reviewers[1]).post("/api/review/votes/undo").status_code == 409
    assert "already open" in admin_action(client, "reopen_selected", [item]).content.decode()
