"""The near-duplicates page in Chromium: an admin queues a search with the button, and once it has run, sees the
groups with thumbnails, labels and splits, the PublicTest leakage count, and filters them from the keyboard."""

from __future__ import annotations

import pytest

from apps.accounts.roles import Role
from apps.faces.models import NearDuplicateRun, Split
from apps.faces.near_duplicates import near_duplicate_run_execute
from apps.inference.services.registry import model_version_register
from tests.accounts.factories import PASSWORD, UserFactory
from tests.faces.neardup_data import brightened, rescaled, smooth_face
from tests.faces.test_near_duplicates import store

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_search_then_browse_and_filter_groups(live_server, page, tmp_path, settings, no_worker):
    from tests.helpers import write_tiny_checkpoint

    settings.INFERENCE_REFRESH_ON_ACTIVATE = False
    UserFactory(username="ada", roles=[Role.ADMIN], is_staff=True)
    a, b = smooth_face(1), smooth_face(2)
    faces = store([("a", a, Split.TRAINING, 3), ("a_test", brightened(a, 30), Split.PUBLIC_TEST, 3),
                   ("b", b, Split.TRAINING, 1), ("b_copy", rescaled(b), Split.TRAINING, 4),
                   ("c", smooth_face(3), Split.TRAINING, 0)])
    model_version_register(checkpoint_path=write_tiny_checkpoint(tmp_path / "t.pt", seed=3), name="tiny",
                           activate=True)

    page.goto(live_server.url + "/accounts/login/?next=/faces/near-duplicates/")
    page.fill("#id_username", "ada")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#leakage >> text=No near-duplicate search has run yet.")
    page.click("#start-search")
    page.wait_for_function("() => document.getElementById('start-status').textContent.includes('queued')")
    run = NearDuplicateRun.objects.get()
    assert page.is_disabled("#start-search")
    page.reload()
    assert "is queued" in page.inner_text("#leakage")

    near_duplicate_run_execute(run_id=run.pk)  # the worker's part, here
    page.reload()
    assert page.inner_text("#leakage strong") == "1"
    groups = page.locator("#groups > li.group")
    assert groups.count() == 2
    first = groups.nth(0)  # conflicting first
    assert "conflicting labels" in first.inner_text() and "disgust" in first.inner_text()
    assert "sad" in first.inner_text()
    assert "PublicTest" in groups.nth(1).inner_text() and "Training" in groups.nth(1).inner_text()
    page.wait_for_function("() => [...document.querySelectorAll('#groups img')].every(i => i.complete "
                           "&& i.naturalWidth === 48)")

    # Keyboard: focus "across splits only", tick it with Space, submit with Enter.
    page.focus("input[name=cross_split]")
    page.keyboard.press("Space")
    page.keyboard.press("Enter")
    page.wait_for_url("**cross_split=true**")
    assert groups.count() == 1
    shown = {int(x) for x in page.locator("#groups .member").evaluate_all("els => els.map(e => e.dataset.face)")}
    assert shown == {faces["a"].pk, faces["a_test"].pk}
