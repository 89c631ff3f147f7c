"""The review page never drops a vote, in a real Chromium against the live server.

A vote goes into the page's outbox (kept in sessionStorage) and is sent from there: retried with backoff while the
failure is transient (no answer, 502/503/504, 429), counted as sent on 2xx or on 409 ``already_voted``, and held as
unsent, with a count and an action, when it is not (an expired session, 404, other 4xx). Undo takes back the newest
vote: one still in the outbox is removed there, one the server has goes through the undo endpoint.

Failures are made by routing the page's vote requests (``page.route``): answered with the status a proxy or the
server gives, or cut off; everything else reaches the real server, and the votes are checked in the database. The
expired session is real: the browser's cookies are cleared. The same page with PostgreSQL really stopped and started
under it is tests/faults/test_review_restart.py.
"""

from __future__ import annotations

import json
import re
import time

import pytest
from django.urls import reverse

from apps.accounts.roles import Role
from apps.review.models import Vote
from tests.accounts.factories import PASSWORD, UserFactory
from tests.review.factories import ReviewItemFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

VOTE_URL = re.compile(r"/api/review/items/\d+/votes$")
UNDO_URL = re.compile(r"/api/review/votes/undo$")
SENT_WITHIN = 60  # s: five failures in a row back off 0.5 + 1 + 2 + 4 + 8 s (at least Retry-After), on 2 busy cores


def _log_in(page, live_server, username: str = "rita") -> None:
    page.goto(f"{live_server.url}/accounts/login/?next={reverse('review')}")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")


def _on_screen(page, item_id: int | str) -> None:
    page.wait_for_selector(f'#review-app[data-item-id="{item_id}"]')


def _idle_on(page, item_id: int | str) -> None:
    """The page shows ``item_id`` and has nothing left to do on its own (sends, loads, undos)."""
    page.wait_for_selector(f'#review-app[data-pending="0"][data-item-id="{item_id}"]')


def _app(page, name: str) -> str | None:
    return page.get_attribute("#review-app", f"data-{name}")


def _votes(user) -> dict[int, int]:
    return dict(Vote.objects.filter(reviewer=user).values_list("item_id", "choice"))


def _wait_votes(page, user, expected: dict[int, int], *, timeout: float = SENT_WITHIN) -> None:
    """Poll the database for ``expected``, waiting in Playwright (the test's route handlers run only while the test
    calls into Playwright, so a plain sleep would hold the page's requests)."""
    deadline = time.monotonic() + timeout
    while (stored := _votes(user)) != expected:
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout} s: votes {expected} stored; the database has {stored}")
        page.wait_for_timeout(200)


def _error(status: int, code: str, detail: str, **headers: str) -> dict:
    """A ``route.fulfill`` answer in the API's error shape."""
    return {"status": status, "content_type": "application/json", "headers": headers,
            "body": json.dumps({"code": code, "detail": detail})}


def test_transient_failures_are_retried_until_every_vote_is_stored(live_server, page):
    rita = UserFactory(username="rita", roles=[Role.REVIEWER])
    a, b, c, d = (ReviewItemFactory(priority=p) for p in (0.1, 0.2, 0.3, 0.4))
    failures = [
        lambda route: route.fulfill(**_error(503, "database_unavailable", "the database is not answering",
                                             **{"Retry-After": "1"})),
        lambda route: route.abort("connectionreset"),  # no answer at all
        lambda route: route.fulfill(status=502, content_type="text/html", body="<h1>502 Bad Gateway</h1>"),
        lambda route: route.fulfill(**_error(429, "throttled", "slow down", **{"Retry-After": "1"})),
        lambda route: route.fulfill(status=504, content_type="text/html", body="<h1>504 Gateway Time-out</h1>"),
    ]
    sent: list[str] = []

    def vote_route(route):
        sent.append(route.request.url)
        if len(sent) <= len(failures):
            failures[len(sent) - 1](route)
        else:
            route.continue_()

    page.route(VOTE_URL, vote_route)
    _log_in(page, live_server)
    _idle_on(page, a.pk)
    page.keyboard.press("5")  # sad: sent, and refused
    _on_screen(page, b.pk)  # the reviewer goes on while it is retried
    page.keyboard.press("2")
    _on_screen(page, c.pk)
    page.keyboard.press("3")
    page.wait_for_selector("#outbox:not([hidden])")
    assert "waiting to be sent" in page.inner_text("#outbox")

    _wait_votes(page, rita, {a.pk: 4, b.pk: 1, c.pk: 2})
    _idle_on(page, d.pk)
    assert (_app(page, "outbox"), _app(page, "unsent")) == ("0", "0")
    assert page.is_hidden("#outbox")
    assert len(sent) == len(failures) + 3  # each failure retried once more, then one request per vote


def test_a_refused_send_waits_at_least_the_servers_retry_after(live_server, page):
    """Backoff starts at 0.5 s; a 429 or 503 that says Retry-After: 3 is not tried again sooner than that."""
    rita = UserFactory(username="rita", roles=[Role.REVIEWER])
    a, b = (ReviewItemFactory(priority=p) for p in (0.1, 0.2))
    tries: list[float] = []

    def vote_route(route):
        tries.append(time.monotonic())
        if len(tries) == 1:
            route.fulfill(**_error(429, "throttled", "slow down", **{"Retry-After": "3"}))
        else:
            route.continue_()

    page.route(VOTE_URL, vote_route)
    _log_in(page, live_server)
    _idle_on(page, a.pk)
    page.keyboard.press("5")
    _wait_votes(page, rita, {a.pk: 4})
    assert len(tries) == 2 and tries[1] - tries[0] >= 2.5, tries


def test_votes_waiting_to_be_sent_survive_a_reload(live_server, page):
    rita = UserFactory(username="rita", roles=[Role.REVIEWER])
    a, b, c = (ReviewItemFactory(priority=p) for p in (0.1, 0.2, 0.3))
    page.route(VOTE_URL, lambda route: route.fulfill(**_error(503, "database_unavailable", "down")))
    _log_in(page, live_server)
    _idle_on(page, a.pk)
    page.keyboard.press("1")
    _on_screen(page, b.pk)
    page.keyboard.press("7")
    page.wait_for_selector('#review-app[data-outbox="2"]')

    page.unroute(VOTE_URL)
    dialogs = []  # "leave the page?" (closing the tab would lose them); a reload keeps them in this tab's storage
    page.on("dialog", lambda dialog: (dialogs.append(dialog.type), dialog.accept()))
    page.reload()
    _wait_votes(page, rita, {a.pk: 0, b.pk: 6})
    _idle_on(page, c.pk)  # the voted items are not shown again
    assert _app(page, "outbox") == "0"
    assert dialogs == ["beforeunload"]


def test_already_voted_counts_as_sent(live_server, page):
    """The vote is stored but its answer is lost: the retry gets the server's 409 ``already_voted``, which counts as
    sent, so the vote is the one Z then undoes on the server."""
    rita = UserFactory(username="rita", roles=[Role.REVIEWER])
    a, b = ReviewItemFactory(priority=0.1), ReviewItemFactory(priority=0.2)
    answers: list[tuple[int, str]] = []

    def vote_route(route):
        response = route.fetch()  # the real server stores the vote (or refuses it)
        answers.append((response.status, response.json().get("code", "") if response.status >= 400 else ""))
        if len(answers) == 1:
            route.abort("connectionreset")  # ... and the page never hears of it
        else:
            route.fulfill(response=response)

    page.route(VOTE_URL, vote_route)
    _log_in(page, live_server)
    _idle_on(page, a.pk)
    page.keyboard.press("4")
    _idle_on(page, b.pk)
    assert answers == [(201, ""), (409, "already_voted")]
    assert (_app(page, "outbox"), _app(page, "unsent")) == ("0", "0")
    assert _votes(rita) == {a.pk: 3}

    page.keyboard.press("z")
    _idle_on(page, a.pk)
    assert _votes(rita) == {}


def test_an_expired_session_holds_votes_unsent_until_the_reviewer_logs_in_again(live_server, page):
    rita = UserFactory(username="rita", roles=[Role.REVIEWER])
    a, b, c = (ReviewItemFactory(priority=p) for p in (0.1, 0.2, 0.3))
    _log_in(page, live_server)
    _idle_on(page, a.pk)
    page.context.clear_cookies()  # the session is gone: the API answers 401
    page.keyboard.press("2")
    _on_screen(page, b.pk)
    page.keyboard.press("3")
    page.wait_for_selector('#review-app[data-unsent="2"]')
    assert page.inner_text("#unsent-count") == "2"
    assert "not sent" in page.inner_text("#outbox")
    assert _votes(rita) == {}

    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.type), dialog.accept()))
    page.click("#outbox a.log-in")  # no "leave the page?" on the way: the votes wait in this tab's storage
    page.fill("#id_username", "rita")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    _wait_votes(page, rita, {a.pk: 1, b.pk: 2})
    _idle_on(page, c.pk)
    assert (_app(page, "outbox"), _app(page, "unsent")) == ("0", "0")
    assert dialogs == []


def test_undo_after_a_failed_send_takes_back_that_vote_not_an_older_stored_one(live_server, page):
    rita = UserFactory(username="rita", roles=[Role.REVIEWER])
    a, b, c = (ReviewItemFactory(priority=p) for p in (0.1, 0.2, 0.3))
    undos: list[str] = []
    page.on("request", lambda request: undos.append(request.url) if UNDO_URL.search(request.url) else None)
    _log_in(page, live_server)
    _idle_on(page, a.pk)
    page.keyboard.press("1")  # stored
    _idle_on(page, b.pk)
    assert _votes(rita) == {a.pk: 0}

    # A vote still being retried: Z takes it out of the outbox; the server's vote on a stays.
    page.route(VOTE_URL, lambda route: route.fulfill(**_error(503, "database_unavailable", "down")))
    page.keyboard.press("2")
    _on_screen(page, c.pk)
    page.wait_for_selector('#review-app[data-outbox="1"]')
    page.keyboard.press("z")
    _idle_on(page, b.pk)
    assert _app(page, "outbox") == "0" and undos == []
    assert _votes(rita) == {a.pk: 0}

    # A vote the server refused for good (shown unsent): the same.
    page.unroute(VOTE_URL)
    page.route(VOTE_URL, lambda route: route.fulfill(**_error(404, "not_found", f"no review item {b.pk}")))
    page.keyboard.press("3")
    page.wait_for_selector('#review-app[data-unsent="1"]')
    page.keyboard.press("z")
    _idle_on(page, b.pk)
    assert (_app(page, "outbox"), _app(page, "unsent")) == ("0", "0") and undos == []
    assert _votes(rita) == {a.pk: 0}

    # Nothing left unsent: Z goes to the server, which takes back the vote on a.
    page.unroute(VOTE_URL)
    page.keyboard.press("z")
    _idle_on(page, a.pk)
    assert len(undos) == 1 and _votes(rita) == {}
    page.keyboard.press("5")
    _idle_on(page, b.pk)
    page.keyboard.press("6")
    _wait_votes(page, rita, {a.pk: 4, b.pk: 5})
