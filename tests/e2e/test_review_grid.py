"""Grid review in a real Chromium against the live server: keyboard and mouse marking, sending a page, the votes in
the database, and a page sent while the server cannot be reached that is delivered later, across a reload."""

from __future__ import annotations

import re
import time

import pytest
from django.urls import reverse

from apps.accounts.roles import Role
from apps.review.models import ReviewItem, Vote
from tests.accounts.factories import PASSWORD, UserFactory
from tests.review.factories import ReviewItemFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

HAPPY, SAD, FEAR, SURPRISE, NEUTRAL = 3, 4, 2, 5, 6
GRID_VOTES_URL = re.compile(r"/api/review/grid/votes$")


def _log_in_to_grid(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/?next={reverse('review-grid')}")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")


def _idle_with(page, items: int) -> None:
    page.wait_for_selector(f'#grid-app[data-pending="0"][data-items="{items}"]')


def _happy_faces(n: int, **kwargs) -> list[ReviewItem]:
    return [ReviewItemFactory(face__original_label=HAPPY, priority=i / 100, **kwargs) for i in range(n)]


def _wait_votes(page, user, expected: dict[int, int], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while (stored := dict(Vote.objects.filter(reviewer=user).values_list("item_id", "choice"))) != expected:
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout} s: votes {expected} stored; the database has {stored}")
        page.wait_for_timeout(200)


def test_keyboard_marks_assigns_classes_and_sends_the_page(live_server, page):
    rita = UserFactory(username="rita", roles=[Role.REVIEWER])
    faces = _happy_faces(6)
    ReviewItemFactory(face__original_label=SAD, priority=0.9)  # another label: not on this page
    _log_in_to_grid(page, live_server, "rita")
    _idle_with(page, 6)
    assert page.inner_text("#page-label") == "happy"
    assert page.get_attribute("#grid-app", "data-label") == str(HAPPY)

    page.keyboard.press("ArrowRight")
    page.keyboard.press(" ")  # face 1 marked, no class yet: it shows its suggestion (sad)
    assert page.get_attribute("#grid-app", "data-focus") == "1"
    assert page.inner_text('li[data-index="1"] .badge') == "→ sad"
    page.keyboard.press("ArrowRight")
    page.keyboard.press(" ")
    page.keyboard.press("ArrowRight")
    page.keyboard.press(" ")
    page.keyboard.press("6")  # surprise for faces 1, 2 and 3: every marked face waiting for a class
    assert [page.inner_text(f'li[data-index="{k}"] .badge') for k in (1, 2, 3)] == ["→ surprise"] * 3
    page.keyboard.press(" ")  # face 3 unmarked again: it confirms happy
    page.keyboard.press("ArrowRight")
    page.keyboard.press("8")  # nothing marked waiting: the class goes to the focused face (4): not a face
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")  # back on face 1
    page.keyboard.press("3")  # fear for the focused face, replacing its surprise
    assert page.get_attribute("#grid-app", "data-focus") == "1"
    assert page.get_attribute("#grid-app", "data-marked") == "3"
    page.keyboard.press("Enter")

    _wait_votes(page, rita, {faces[0].pk: HAPPY, faces[1].pk: FEAR, faces[2].pk: SURPRISE, faces[3].pk: HAPPY,
                             faces[4].pk: 7, faces[5].pk: HAPPY})
    _idle_with(page, 1)  # the next page: the sad face
    assert page.inner_text("#page-label") == "sad"
    assert "Page stored: 6 votes" in page.inner_text("#status")
    assert not ReviewItem.objects.filter(pk__in=[f.pk for f in faces], lease_holder__isnull=False).exists()


def test_mouse_marks_and_sends_the_page(live_server, page):
    rita = UserFactory(username="rita", roles=[Role.REVIEWER])
    faces = _happy_faces(4)
    _log_in_to_grid(page, live_server, "rita")
    _idle_with(page, 4)
    page.click('li[data-index="0"]')  # takes its suggestion, sad
    page.click('li[data-index="1"]')
    page.click('li[data-index="1"]')  # unmarked again
    page.click('li[data-index="2"]')
    page.click('button[data-choice="5"]')  # surprise for face 2 (face 0 waits too: both get it)
    page.click('li[data-index="0"]')  # face 0 unmarked, then marked again with its suggestion
    page.click('li[data-index="0"]')
    assert page.inner_text('li[data-index="0"] .badge') == "→ sad"
    assert page.get_attribute('li[data-index="2"]', "aria-selected") == "true"
    page.click('button[data-action="submit"]')
    _wait_votes(page, rita, {faces[0].pk: SAD, faces[1].pk: HAPPY, faces[2].pk: SURPRISE, faces[3].pk: HAPPY})
    page.wait_for_selector('#grid-app[data-pending="0"] #empty:not([hidden])')


def test_a_marked_face_without_a_class_or_suggestion_holds_the_page(live_server, page):
    rita = UserFactory(username="rita", roles=[Role.REVIEWER])
    faces = _happy_faces(2, suggested_label=None)
    _log_in_to_grid(page, live_server, "rita")
    _idle_with(page, 2)
    page.keyboard.press(" ")
    page.keyboard.press("Enter")
    assert "no class yet" in page.inner_text("#status")
    assert not Vote.objects.exists()
    page.keyboard.press("7")  # neutral
    page.keyboard.press("Enter")
    _wait_votes(page, rita, {faces[0].pk: NEUTRAL, faces[1].pk: HAPPY})


def test_a_page_sent_while_the_server_is_unreachable_is_delivered_later(live_server, page):
    rita = UserFactory(username="rita", roles=[Role.REVIEWER])
    faces = _happy_faces(3)
    _log_in_to_grid(page, live_server, "rita")
    _idle_with(page, 3)
    tries: list[str] = []

    def unreachable(route):
        tries.append(route.request.url)
        route.abort("connectionrefused")

    page.route(GRID_VOTES_URL, unreachable)
    page.keyboard.press(" ")
    page.keyboard.press("2")  # disgust
    page.keyboard.press("Enter")
    page.wait_for_selector('#grid-app[data-outbox="1"] #outbox:not([hidden])')
    assert "1 page waiting to be sent" in page.inner_text("#outbox")
    page.wait_for_function("() => true")
    deadline = time.monotonic() + 20
    while len(tries) < 2 and time.monotonic() < deadline:  # retried with backoff
        page.wait_for_timeout(200)
    assert len(tries) >= 2 and not Vote.objects.exists()

    dialogs = []  # a reload keeps the outbox (this tab's storage); closing the tab would lose it, hence the question
    page.on("dialog", lambda dialog: (dialogs.append(dialog.type), dialog.accept()))
    page.reload()
    page.wait_for_selector('#grid-app[data-outbox="1"]')
    page.unroute(GRID_VOTES_URL)  # the server is back
    _wait_votes(page, rita, {faces[0].pk: 1, faces[1].pk: HAPPY, faces[2].pk: HAPPY})
    page.wait_for_selector('#grid-app[data-outbox="0"][data-pending="0"]')
    assert dialogs == ["beforeunload"]
    assert Vote.objects.count() == 3
