"""The scoring page in Chromium with a real worker: an admin starts an out-of-fold run and watches it live (progress
bar, ETA, folds x epochs grid) to its figures, cancels a queued run and resumes it, and starts an in-sample run with
the active model; the review page then names the run that filled the queue."""

from __future__ import annotations

import pytest

from apps.accounts.roles import Role
from apps.inference.services.registry import model_version_register
from apps.review.models import ScoringRun
from apps.review.scoring import scoring_run_create
from tests.accounts.factories import PASSWORD, UserFactory
from tests.review.scoring_data import synthetic_faces

pytestmark = [pytest.mark.e2e, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_start_watch_cancel_and_resume_scoring_runs(live_server, page, shared_media_root, settings, tmp_path):
    from tests.helpers import write_tiny_checkpoint

    settings.INFERENCE_REFRESH_ON_ACTIVATE = False
    UserFactory(username="ada", roles=[Role.ADMIN], is_staff=True)
    synthetic_faces()
    model_version_register(checkpoint_path=write_tiny_checkpoint(tmp_path / "a.pt", seed=3), name="tiny-a",
                           activate=True)

    page.goto(live_server.url + "/accounts/login/?next=/review/scoring/")
    page.fill("#id_username", "ada")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#scoring-form")
    page.wait_for_selector("#runs >> text=No scoring run yet.")
    assert "tiny-a" in page.inner_text("#scoring-form + .hint")

    # Out-of-fold: live progress, then the figures and a full grid of 2 folds x 30 epochs. The form offers the
    # refining short run first, with no folds to fill in.
    assert page.input_value("#method") == "short_run" and page.is_disabled("#folds")
    page.select_option("#method", "out_of_fold")
    page.fill("#folds", "2")
    page.fill("#epochs", "30")
    page.select_option("#filter-by", "predicted_neq_given")
    page.click("#start")
    page.wait_for_function("() => document.getElementById('start-status').textContent.includes('queued')")
    run = ScoringRun.objects.get()
    assert (run.method, run.folds, run.epochs, run.filter_by) == ("out_of_fold", 2, 30, "predicted_neq_given")
    assert run.blend_active  # checked by default while a version is active
    card = f'.srun[data-run-id="{run.pk}"]'
    page.wait_for_selector(f'{card}[data-status="running"] progress:not([value="0"])', timeout=120_000)
    text = page.inner_text(f"{card} .position")
    assert "fold " in text and "epoch " in text and "ETA" in text
    page.wait_for_selector(f'{card}[data-status="succeeded"]', timeout=180_000)
    assert "averaged with tiny-a in-sample" in page.inner_text(f"{card} h3")
    assert page.locator(f"{card} .folds .cell.done").count() == 60
    run.refresh_from_db()
    assert f"flagged{run.issue_count}" in page.inner_text(f"{card} table.figures").replace("\t", "").replace(" ", "")

    # A queued run that no worker has yet: cancel it, then resume it, and the worker finishes it.
    queued = scoring_run_create(folds=2, epochs=1, filter_by="predicted_neq_given")
    page.reload()
    queued_card = f'.srun[data-run-id="{queued.pk}"]'
    page.click(f'{queued_card}[data-status="queued"] button.cancel')
    page.click(f'{queued_card}[data-status="cancelled"] button.resume')
    page.wait_for_selector(f'{queued_card}[data-status="succeeded"]', timeout=180_000)

    # In-sample with the active model: folds and epochs do not apply.
    page.select_option("#method", "in_sample")
    assert page.is_disabled("#folds") and page.is_disabled("#epochs")
    page.fill("#outliers", "3")
    page.fill("#outlier-min-score", "0.9")
    page.click("#start")
    in_sample = ScoringRun.objects.filter(method="in_sample")
    page.wait_for_function("() => document.getElementById('start-status').textContent.includes('queued')")
    in_sample_card = f'.srun[data-run-id="{in_sample.get().pk}"]'
    page.wait_for_selector(f'{in_sample_card}[data-status="succeeded"]', timeout=180_000)
    assert "in-sample with tiny-a" in page.inner_text(f"{in_sample_card} h3")
    assert (in_sample.get().outliers, in_sample.get().outlier_min_score) == (3, 0.9)

    # The review page names the run that filled the queue (read server-side: opening it in the browser would lease
    # items and send their overlays to the worker, which would still be writing when the test database is flushed).
    from django.test import Client

    client = Client()
    client.force_login(UserFactory(username="rita", roles=[Role.REVIEWER]))
    review = client.get("/review/").content.decode()
    assert '<span id="queue-method">in-sample</span>' in review
    assert f'<span id="queue-flagged">{in_sample.get().issue_count}</span>' in review
