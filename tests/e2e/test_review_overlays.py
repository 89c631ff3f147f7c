"""The review page with a real active model and a real Celery worker: the model view computes nothing, lists the
overlays as pending, the worker stores them, and the page shows them without a reload."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.accounts.roles import Role
from apps.inference import runtime
from apps.inference.models import Explanation
from apps.inference.services.registry import model_version_register
from tests.accounts.factories import PASSWORD, UserFactory
from tests.helpers import write_tiny_checkpoint
from tests.review.factories import ReviewItemFactory

pytestmark = [pytest.mark.e2e, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_pending_overlays_arrive_from_the_worker(live_server, page, shared_media_root, tmp_path, settings):
    settings.INFERENCE_REFRESH_ON_ACTIVATE = False
    version = model_version_register(checkpoint_path=write_tiny_checkpoint(tmp_path / "tiny.pt", seed=3),
                                     name="tiny-review", activate=True)
    item = ReviewItemFactory(suggested_label=5, face__original_label=3)
    UserFactory(username="rita", roles=[Role.REVIEWER])
    assert Explanation.objects.count() == 0
    loads_here = runtime.load_count  # the live server runs in this process: it must never load the model

    page.goto(f"{live_server.url}/accounts/login/?next={reverse('review')}")
    page.fill("#id_username", "rita")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector(f'#review-app[data-item-id="{item.pk}"]')

    for role, label in (("current", "happy"), ("suggestion", "surprise")):
        figure = page.locator(f"#cam-{role}")
        figure.locator("img:not([hidden])").wait_for(timeout=90_000)
        assert figure.locator(".cam-label").inner_text() == label
    stored = set(Explanation.objects.filter(model_version=version, face=item.face)
                 .values_list("method", "target_label"))
    assert {("gradcam", 3), ("gradcam", 5)} <= stored
    assert runtime.load_count == loads_here  # computed by the worker, not by the web process
