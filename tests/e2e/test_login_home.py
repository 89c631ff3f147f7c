from __future__ import annotations

import pytest

from apps.accounts.roles import Role
from tests.accounts.factories import PASSWORD, UserFactory
from tests.faces.factories import FaceImageFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_log_in_and_see_the_counts(live_server, page):
    UserFactory(username="ada", roles=[Role.ADMIN])  # counts of every split and of users are for admins
    FaceImageFactory.create_batch(2, split="Training", original_label=3)
    FaceImageFactory(split="PublicTest", original_label=0)

    page.goto(live_server.url + "/")
    assert "/accounts/login/" in page.url  # anonymous: sent to log in
    page.fill("#id_username", "ada")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")

    page.wait_for_selector("#face-counts")
    assert page.inner_text("h1") == "What the platform holds"
    training = page.locator('tr[data-split="Training"] td').all_inner_texts()
    assert training[3] == "2" and training[-1] == "2"
    assert page.locator('tr[data-split="PublicTest"] td').all_inner_texts()[0] == "1"
    assert page.inner_text("#user-counts tbody td.total") == "1"
    # The stylesheet is served (whitenoise) without a CDN.
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(246, 247, 249)"
