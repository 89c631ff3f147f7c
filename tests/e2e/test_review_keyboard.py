from __future__ import annotations

import pytest

from apps.accounts.roles import Role
from apps.review.models import Skip, Vote
from tests.accounts.factories import PASSWORD, UserFactory
from tests.review.factories import ReviewItemFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _wait_idle_on(page, item_id: int) -> None:
    page.wait_for_selector(f'#review-app[data-pending="0"][data-item-id="{item_id}"]')


def test_review_with_the_keyboard_vote_undo_skip(live_server, page):
    rita = UserFactory(username="rita", roles=[Role.REVIEWER])
    first, second, third = (ReviewItemFactory(priority=p, suggested_label=5) for p in (0.1, 0.2, 0.3))

    page.goto(live_server.url + "/accounts/login/?next=/review/")
    page.fill("#id_username", "rita")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    _wait_idle_on(page, first.pk)
    assert page.evaluate("getComputedStyle(document.getElementById('face')).imageRendering") == "pixelated"
    page.wait_for_function("() => document.getElementById('face').naturalWidth === 48")
    assert page.inner_text("#current-label") == "happy" and page.inner_text("#suggested-label") == "surprise"
    page.wait_for_function("() => document.getElementById('model-note').textContent.includes('No model is active')")

    page.keyboard.press("?")
    assert page.is_visible("#help")
    page.keyboard.press("Escape")
    assert not page.is_visible("#help")

    page.keyboard.press("5")  # sad
    _wait_idle_on(page, second.pk)
    assert list(Vote.objects.values_list("item_id", "reviewer_id", "choice")) == [(first.pk, rita.pk, 4)]
    assert page.inner_text("#votes-today") == "1"

    page.keyboard.press("z")  # undo: the first face comes back
    _wait_idle_on(page, first.pk)
    assert not Vote.objects.exists()

    page.keyboard.press("s")  # skip it
    _wait_idle_on(page, second.pk)
    assert list(Skip.objects.values_list("item_id", flat=True)) == [first.pk]

    page.keyboard.press("Enter")  # accept the suggestion
    _wait_idle_on(page, third.pk)
    assert list(Vote.objects.values_list("item_id", "choice")) == [(second.pk, 5)]
    page.keyboard.press("8")  # not a face
    page.wait_for_selector('#review-app[data-pending="0"][data-item-id=""]')
    assert page.is_visible("#empty")
    assert list(Vote.objects.order_by("pk").values_list("item_id", "choice")) == [(second.pk, 5), (third.pk, 7)]


def test_reviewers_page_shows_agreement(live_server, page):
    UserFactory(username="rita", roles=[Role.REVIEWER])
    page.goto(live_server.url + "/accounts/login/?next=/review/reviewers/")
    page.fill("#id_username", "rita")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#kappa")
    assert "not enough votes yet" in page.inner_text("#kappa")


def test_the_page_shows_why_a_face_is_in_the_queue(live_server, page):
    from apps.review.models import LabelScore, ReviewItem, ScoringRun
    from tests.faces.factories import FaceImageFactory

    UserFactory(username="rita", roles=[Role.REVIEWER])
    run = ScoringRun.objects.create(method="short_run", folds=1, status=ScoringRun.Status.SUCCEEDED)
    face = FaceImageFactory(original_label=3, current_label=3)
    score = LabelScore.objects.create(
        run=run, face=face, given_label=3, quality=0.1, is_issue=True, suggested_label=5, suggested_probability=0.81,
        probabilities=[0.02, 0.01, 0.02, 0.12, 0.01, 0.81, 0.01],
        signals={"negative_epochs": 9, "epochs": 12, "snapshots_agree": 3, "snapshots": 3})
    item = ReviewItem.objects.create(face=face, score=score, priority=0.1, suggested_label=5,
                                     suggested_probability=0.81)
    page.goto(live_server.url + "/accounts/login/?next=/review/")
    page.fill("#id_username", "rita")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    _wait_idle_on(page, item.pk)
    assert page.locator("#reasons li").all_inner_texts() == [
        "the model reads surprise at 0.81, the label happy at 0.12",
        "a short training run's margin for happy was negative in 9 of 12 epochs",
        "it read surprise in 3 of its 3 snapshots"]
