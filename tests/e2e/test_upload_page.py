"""The upload page in a real Chromium, with a real Celery worker making the prediction and the heatmaps (the one
made on demand too)."""

from __future__ import annotations

import pytest

from tests.accounts.factories import PASSWORD, UserFactory
from tests.uploads import samples

pytestmark = [pytest.mark.e2e, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def log_in(page, live_server, username: str) -> None:
    page.goto(live_server.url + "/uploads/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#dropzone")


def test_upload_a_file_and_see_probabilities_and_heatmap(live_server, page, shared_media_root, active_version):
    UserFactory(username="uma")
    log_in(page, live_server, "uma")

    page.set_input_files("#file-input", files=[
        {"name": "face.png", "mimeType": "image/png", "buffer": samples.face48()}])
    card = page.locator(".result").first
    card.locator('.state[data-status="done"]').wait_for(timeout=90_000)
    assert card.locator(".bar-row").count() == 7
    assert card.locator(".bar-row.predicted").count() == 1
    widths = card.locator(".bar .fill").evaluate_all("els => els.map(e => parseFloat(e.style.width))")
    assert abs(sum(widths) - 100) < 1.5
    overlay = card.locator("img.overlay")
    assert "/media/explanations/" in overlay.get_attribute("src")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=overlay.element_handle())
    crop = card.locator("img.face-crop")
    page.wait_for_function("img => img.complete && img.naturalWidth === 48", arg=crop.element_handle())
    assert crop.evaluate("img => getComputedStyle(img).imageRendering") == "pixelated"
    gradcam_src = overlay.get_attribute("src")

    # Switch the CAM method: the heatmap is not stored, so the first answer is 202 and the worker makes it while the
    # page asks again (?wait=); then it replaces the overlay.
    answers = []
    page.on("response", lambda r: answers.append((r.status, r.url)) if r.request.method == "POST" else None)
    card.locator("select.cam-method").select_option("layercam")
    page.wait_for_selector('.result img.overlay[data-method="layercam"]')
    assert overlay.get_attribute("src") != gradcam_src
    assert "layercam" in card.locator(".overlay-caption").inner_text()
    assert card.locator(".overlay-caption").get_attribute("data-state") == "shown"
    assert answers[0][0] == 202 and answers[-1][0] == 200 and "wait=" in answers[-1][1], answers

    # The history lists it; opening it after a reload shows the same result.
    page.reload()
    entry = page.locator("#history li").first
    entry.wait_for()
    assert "face.png" in entry.inner_text()
    entry.locator("button").click()
    page.locator('.result .state[data-status="done"]').wait_for()
    assert page.locator(".result .bar-row").count() == 7

    # A bad file is refused with the server's message.
    page.set_input_files("#file-input", files=[
        {"name": "notes.jpg", "mimeType": "image/jpeg", "buffer": b"plain text, not a picture\n" * 10}])
    page.wait_for_selector("#upload-status.error")
    assert "not an image" in page.inner_text("#upload-status")
