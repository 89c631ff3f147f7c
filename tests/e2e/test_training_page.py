"""The training page in Chromium: an admin starts a short run with "Retrain now"; a real worker trains it while the
page polls, showing the epoch progress, then the curves, the gate's decision and the new version."""

from __future__ import annotations

import pytest

from apps.accounts.roles import Role
from apps.inference.services.registry import model_version_register
from apps.training.models import TrainingRun
from tests.accounts.factories import PASSWORD, UserFactory
from tests.training.conftest import synthetic_faces

pytestmark = [pytest.mark.e2e, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_retrain_now_shows_live_progress_curves_and_the_result(live_server, page, shared_media_root, settings,
                                                                 tmp_path):
    from tests.helpers import write_tiny_checkpoint

    UserFactory(username="ada", roles=[Role.ADMIN], is_staff=True)
    synthetic_faces(test_per_class=0)  # no PublicTest: the gate keeps the new version inactive (nothing re-queued)
    active = model_version_register(checkpoint_path=write_tiny_checkpoint(tmp_path / "a.pt", seed=3), name="tiny-a",
                                    activate=True)

    page.goto(live_server.url + "/accounts/login/?next=/training/")
    page.fill("#id_username", "ada")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#retrain-form")
    assert page.inner_text("#active-version").startswith("tiny-a")
    page.wait_for_selector("#runs >> text=No runs yet.")

    page.select_option("#recipe", "scoring")
    page.fill("#epochs", "40")
    # Leaving out cross-split duplicates needs a near-duplicate search: the page says so and nothing is queued.
    page.check("#exclude-cross-split-duplicates")
    page.click("#retrain")
    page.wait_for_function("() => document.getElementById('retrain-status').textContent.includes('near-duplicate')")
    assert not TrainingRun.objects.exists()
    page.uncheck("#exclude-cross-split-duplicates")
    page.click("#retrain")
    page.wait_for_function("() => document.getElementById('retrain-status').textContent.includes('queued')")
    run = TrainingRun.objects.get()
    assert run.recipe_name == "scoring" and run.epochs == 40 and run.trigger == "admin"

    card = f'.run[data-run-id="{run.pk}"]'
    # Live progress: the card is running with at least one finished epoch (the page polls every 2 s).
    page.wait_for_selector(f'{card}[data-status="running"] progress:not([value="0"])', timeout=120_000)
    assert "epoch" in page.inner_text(f"{card} .epoch")
    page.wait_for_selector(f'{card}[data-status="succeeded"]', timeout=180_000)
    assert page.inner_text(f"{card} .epoch") == "40/40 epochs"
    points = page.get_attribute(f"{card} svg.curves polyline.loss", "points")
    assert len(points.split()) == 40
    assert "no PublicTest faces" in page.inner_text(f"{card} .gate")

    run.refresh_from_db()
    page.wait_for_selector(f'#versions tr[data-version-id="{run.model_version_id}"] button.promote')
    assert page.inner_text(f'#versions tr[data-version-id="{active.pk}"] .vstatus') == "active"
