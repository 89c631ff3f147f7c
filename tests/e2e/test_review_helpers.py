"""The review page on the shared page helpers, in a real Chromium: class names come from the server's list
(``emotion-classes`` in base.html), and heatmaps that the model view lists as ``pending`` (queued to a worker, not
stored yet) show "computing heatmap…" and are polled until they arrive, only while their item is on the page. The
model view is answered by the test (``page.route``), to the endpoint's contract."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from django.urls import reverse

from apps.accounts.roles import Role
from apps.core import context_processors
from apps.review.models import LabelScore, ScoringRun
from ml.labels import CLASSES
from tests.accounts.factories import PASSWORD, UserFactory
from tests.review.factories import ReviewItemFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ROLES = ("current", "suggestion")


def _log_in(page, live_server) -> None:
    UserFactory(username="rita", roles=[Role.REVIEWER])
    page.goto(f"{live_server.url}/accounts/login/?next={reverse('review')}")
    page.fill("#id_username", "rita")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")


def _wait_idle_on(page, item_id: int) -> None:
    page.wait_for_selector(f'#review-app[data-pending="0"][data-item-id="{item_id}"]')


def _model_view(item, pending: list[str]) -> dict:
    labels = {"current": item.face.current_label, "suggestion": item.suggested_label}
    overlays = {role: {"label": labels[role], "label_name": CLASSES[labels[role]], "url": item.face.pixels.png.url}
                for role in ROLES if role not in pending}
    return {"model_active": True, "reason": "", "model_version": {"id": 1, "name": "tiny"},
            "prediction": {"label": 5, "label_name": "surprise", "confidence": 0.5, "probabilities": [0.5] * 7},
            "overlays": overlays, "pending": pending}


def _answer_model_views(page, live_server, items, pending_for) -> Counter:
    """Answer GET <item's model url> with ``pending_for(item, n)`` for the n-th request (1-based); count them."""
    by_url = {live_server.url + reverse("review-api-model", args=[item.pk]): item for item in items}
    calls: Counter = Counter()

    def handle(route):
        item = by_url[route.request.url]
        calls[item.pk] += 1
        route.fulfill(status=200, content_type="application/json",
                      body=json.dumps(_model_view(item, pending_for(item, calls[item.pk]))))

    page.route(lambda url: url in by_url, handle)
    return calls


def test_class_names_come_from_the_servers_list(live_server, page, monkeypatch):
    served = tuple(f"{name}-from-server" for name in CLASSES)
    monkeypatch.setattr(context_processors, "CLASSES", served)
    item = ReviewItemFactory(suggested_label=5, suggested_probability=0.5)
    probabilities = [0.02, 0.03, 0.05, 0.2, 0.1, 0.5, 0.1]
    item.score = LabelScore.objects.create(
        run=ScoringRun.objects.create(status=ScoringRun.Status.SUCCEEDED), face=item.face,
        given_label=item.face.current_label, quality=0.1, suggested_label=5, suggested_probability=0.5,
        probabilities=probabilities)
    item.save(update_fields=["score"])

    _log_in(page, live_server)
    _wait_idle_on(page, item.pk)
    assert page.evaluate("window.ferplatform.classes()") == list(served)
    assert page.locator("#bars li .name").all_inner_texts() == [f"{k + 1} {name}" for k, name in enumerate(served)]
    assert page.inner_text("#current-label") == served[item.face.current_label]
    assert page.inner_text("#suggested-label") == served[5]
    assert page.get_attribute("#bars li.suggested", "data-class") == served[5]
    widths = page.locator("#bars .bar span").evaluate_all("els => els.map(e => parseFloat(e.style.width))")
    assert widths == pytest.approx([100 * p for p in probabilities])
    # Class names go in as text, and the helpers every page shares are there.
    assert page.locator("#bars li .name").first.evaluate("e => e.children.length") == 0
    assert page.evaluate("['api', 'el', 'classes', 'urlFor'].every(k => typeof window.ferplatform[k] === 'function')")


def test_pending_heatmaps_are_polled_until_they_are_stored(live_server, page):
    first, second = (ReviewItemFactory(priority=p, suggested_label=5) for p in (0.1, 0.2))

    def pending_for(item, n):  # the first item: both pending twice, then only the suggestion, then none
        if item.pk != first.pk:
            return []
        return list(ROLES) if n <= 2 else ["suggestion"] if n == 3 else []

    calls = _answer_model_views(page, live_server, [first, second], pending_for)
    _log_in(page, live_server)
    _wait_idle_on(page, first.pk)
    page.wait_for_selector('#cam-current[data-heatmap="computing"]')
    assert page.inner_text("#cam-current .cam-status") == "computing heatmap…"
    assert page.inner_text("#cam-suggestion .cam-status") == "computing heatmap…"
    assert page.is_hidden("#cam-current img") and page.is_hidden("#cam-suggestion img")
    assert page.inner_text("#model-note") == "Active model tiny predicts surprise (50%)."

    page.wait_for_selector('#cam-current[data-heatmap="shown"] ~ #cam-suggestion[data-heatmap="computing"]')
    page.wait_for_selector('#cam-suggestion[data-heatmap="shown"]')
    for role in ROLES:
        img = page.locator(f"#cam-{role} img")
        page.wait_for_function("img => img.complete && img.naturalWidth === 48", arg=img.element_handle())
        assert page.inner_text(f"#cam-{role} .cam-status") == ""
    assert page.inner_text("#cam-current .cam-label") == CLASSES[first.face.current_label]
    assert page.inner_text("#cam-suggestion .cam-label") == CLASSES[5]
    assert calls == {first.pk: 4, second.pk: 1}  # the prefetched item had nothing pending: asked once

    page.wait_for_timeout(2_500)  # everything is stored: no more polling
    assert calls == {first.pk: 4, second.pk: 1}
    page.keyboard.press("s")  # the prefetched item's overlays are already there
    _wait_idle_on(page, second.pk)
    assert page.get_attribute("#cam-current", "data-heatmap") == "shown"


def test_polling_stops_when_the_item_leaves_and_gives_up_after_a_minute(live_server, page):
    first, second = (ReviewItemFactory(priority=p, suggested_label=5) for p in (0.1, 0.2))
    calls = _answer_model_views(page, live_server, [first, second], lambda item, n: list(ROLES))
    page.clock.install()  # the page's timers and Date, so that a minute can pass at once
    _log_in(page, live_server)
    _wait_idle_on(page, first.pk)
    page.wait_for_selector('#cam-current[data-heatmap="computing"]')

    page.keyboard.press("s")  # skipped: the first item is no longer asked for
    _wait_idle_on(page, second.pk)
    page.wait_for_selector('#cam-suggestion[data-heatmap="computing"]')
    asked_first, asked_second = calls[first.pk], calls[second.pk]
    page.wait_for_timeout(3_500)  # two polls' worth
    assert calls[first.pk] == asked_first
    assert calls[second.pk] > asked_second

    page.clock.fast_forward(61_000)
    page.wait_for_selector('#cam-current[data-heatmap="gave-up"]')
    assert page.inner_text("#cam-current .cam-status") == "The heatmap is still not ready. Try again later."
    assert page.get_attribute("#cam-suggestion", "data-heatmap") == "gave-up"
    given_up = calls[second.pk]
    page.wait_for_timeout(2_500)
    assert calls[second.pk] == given_up
