"""The review page says why each face is in the queue: an outlier (maybe not a face) stands out from a label issue."""

from __future__ import annotations

import pytest

from apps.accounts.roles import Role
from apps.review.models import Vote
from apps.review.services import review_item_flag
from tests.accounts.factories import PASSWORD, UserFactory
from tests.faces.factories import FaceImageFactory
from tests.review.factories import ReviewItemFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_the_page_shows_the_kind_and_the_outlier_reason(live_server, page):
    UserFactory(username="rita", roles=[Role.REVIEWER])
    outlier = review_item_flag(face=FaceImageFactory(), kind="outlier", priority=0.01,
                               detail={"score": 0.97, "reason": "near-constant image (pixel std 0.0)"})
    label = ReviewItemFactory(priority=0.5, suggested_label=5)

    page.goto(live_server.url + "/accounts/login/?next=/review/")
    page.fill("#id_username", "rita")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector(f'#review-app[data-pending="0"][data-item-id="{outlier.pk}"]')
    assert page.inner_text("#item-kind") == "outlier (maybe not a face)"
    assert page.get_attribute("#item-kind", "data-kind") == "outlier"
    assert page.evaluate("getComputedStyle(document.getElementById('item-kind')).color") == "rgb(180, 35, 24)"
    assert page.inner_text("#reasons li:first-child") == (
        "an outlier, maybe not a face: near-constant image (pixel std 0.0) (outlier score 0.97)")

    page.keyboard.press("8")  # not a face
    page.wait_for_selector(f'#review-app[data-pending="0"][data-item-id="{label.pk}"]')
    assert list(Vote.objects.values_list("item_id", "choice")) == [(outlier.pk, 7)]
    assert page.inner_text("#item-kind") == "label issue"
    assert page.get_attribute("#item-kind", "data-kind") == "label_issue"
