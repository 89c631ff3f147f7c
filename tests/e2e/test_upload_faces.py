"""A photo with several faces on the upload page in a real Chromium, with a real Celery worker: a labelled box on each
face drawn over the photo, and each box opens that face's crop, probabilities and heatmap."""

from __future__ import annotations

import pytest

from apps.inference.models import Explanation
from apps.uploads.models import UploadFace
from tests.accounts.factories import UserFactory
from tests.uploads import samples

from .test_upload_page import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_each_face_of_a_group_photo_has_a_box_that_opens_it(live_server, page, shared_media_root, active_version):
    UserFactory(username="gina")
    log_in(page, live_server, "gina")

    page.set_input_files("#file-input", files=[
        {"name": "group.jpg", "mimeType": "image/jpeg", "buffer": samples.group_jpeg(2)}])
    card = page.locator(".result").first
    card.locator('.state[data-status="done"]').wait_for(timeout=90_000)
    assert "2 faces" in card.locator(".state").inner_text()
    photo = card.locator("img.photo-image")
    page.wait_for_function("img => img.complete && img.naturalWidth === 640", arg=photo.element_handle())
    assert "/api/uploads/" in photo.get_attribute("src")

    boxes = card.locator(".face-box")
    assert boxes.count() == 2
    labels = [boxes.nth(i).inner_text() for i in range(2)]
    assert labels[0].startswith("1 ") and labels[1].startswith("2 ") and all("%" in label for label in labels)
    # Each box sits on its face: inside the photo as shown, the larger face on the left.
    shown = photo.bounding_box()
    first, second = (boxes.nth(i).bounding_box() for i in range(2))
    for box in (first, second):
        assert shown["x"] <= box["x"] and box["x"] + box["width"] <= shown["x"] + shown["width"] + 1
        assert shown["y"] <= box["y"] and box["y"] + box["height"] <= shown["y"] + shown["height"] + 1
    assert first["x"] + first["width"] < second["x"] and first["width"] > second["width"]
    scale = shown["width"] / 640
    for box, (cx, _, half) in zip((first, second), samples.GROUP_FACES, strict=False):
        assert abs(box["x"] + box["width"] / 2 - (shown["x"] + cx * scale)) < half * scale / 2
    assert boxes.nth(0).get_attribute("aria-pressed") == "true"

    faces = list(UploadFace.objects.order_by("index").select_related("face__pixels"))
    crop, overlay = card.locator("img.face-crop"), card.locator("img.overlay")
    assert crop.get_attribute("src").endswith(faces[0].face.pixels.png.url)
    first_overlay = overlay.get_attribute("src")

    # The second box opens the second face: its crop, its bars, its own stored heatmap.
    boxes.nth(1).click()
    assert boxes.nth(1).get_attribute("aria-pressed") == "true"
    assert boxes.nth(0).get_attribute("aria-pressed") == "false"
    assert crop.get_attribute("src").endswith(faces[1].face.pixels.png.url)
    page.wait_for_function("img => img.complete && img.naturalWidth === 48", arg=crop.element_handle())
    assert card.locator(".bar-row").count() == 7 and card.locator(".bar-row.predicted").count() == 1
    assert card.locator(".face-caption").inner_text() == "face 2 (48x48)"
    gradcam = Explanation.objects.get(face=faces[1].face, method="gradcam")
    assert overlay.get_attribute("src").endswith(gradcam.overlay.url) and overlay.get_attribute("src") != first_overlay
    assert card.get_attribute("data-predicted") in labels[1]

    # The CAM switcher explains the face on show (made on demand by the worker).
    card.locator("select.cam-method").select_option("layercam")
    card.locator('img.overlay[data-method="layercam"]').wait_for(timeout=60_000)
    assert Explanation.objects.filter(face=faces[1].face, method="layercam").exists()
    assert not Explanation.objects.filter(face=faces[0].face, method="layercam").exists()

    # Keyboard: a digit chooses that face of the card in focus; face 1 then gets its layercam heatmap too.
    boxes.nth(1).focus()
    page.keyboard.press("1")
    assert boxes.nth(0).get_attribute("aria-pressed") == "true"
    assert page.evaluate("document.activeElement.dataset.index") == "0"
    assert crop.get_attribute("src").endswith(faces[0].face.pixels.png.url)
    card.locator(".overlay-caption[data-state=shown]").wait_for(timeout=60_000)
    layercam = Explanation.objects.get(face=faces[0].face, method="layercam")  # made on demand for face 1 now
    assert overlay.get_attribute("data-method") == "layercam"
    assert overlay.get_attribute("src").endswith(layercam.overlay.url)
