"""The gallery and evaluation pages in a real Chromium: open, filter, click a confusion cell, open a face, ask for a
heatmap of another class (made by a real worker while the page asks again). Real predictions and Grad-CAM maps from
the tiny test checkpoint."""

from __future__ import annotations

import json

import pytest

from apps.faces.labels import CLASSES
from apps.faces.models import Split
from apps.gallery.models import FaithfulnessScore
from apps.gallery.services import faithfulness_compute
from apps.inference.models import Explanation
from apps.inference.services.predictions import explanations_compute
from tests.accounts.factories import PASSWORD
from tests.gallery import conftest as gallery_fixtures

gallery_data = gallery_fixtures.gallery_data  # the gallery tests' data set (its checkpoint: tests/conftest.py)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def log_in(page, live_server, username: str, next_url: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/?next={next_url}")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")


def tile_ids(page) -> set[int]:
    return {int(pk) for pk in page.locator("#gallery-grid .tile").evaluate_all("els => els.map(e => e.dataset.faceId)")}


@pytest.mark.worker
def test_gallery_filter_cell_and_face(live_server, page, researcher, shared_media_root, celery_worker_process,
                                      gallery_data):  # after shared_media_root: its files are the worker's too
    data = gallery_data
    log_in(page, live_server, researcher.username, "/gallery/")
    page.wait_for_selector("#gallery-grid")
    assert tile_ids(page) == data.visible
    page.wait_for_function("() => [...document.querySelectorAll('#gallery-grid img.overlay')]"
                           ".every(img => img.complete && img.naturalWidth === 192)")

    # Filter: wrong predictions on PublicTest.
    page.select_option("#id_split", Split.PUBLIC_TEST)
    page.select_option("#id_correct", "false")
    page.click("#apply-filters")
    page.wait_for_url("**correct=false**")
    expected = data.ids(lambda f, p: f.split == Split.PUBLIC_TEST and p.predicted_label != f.current_label)
    assert expected and tile_ids(page) == expected, (page.url, page.inner_text("main")[:1500])
    assert page.inner_text("#result-count") == str(len(expected))

    # The evaluation page: click the fullest off-diagonal cell of the confusion matrix.
    page.click("#link-evaluation")
    page.wait_for_selector("#confusion-PublicTest")
    assert "published, not measured here" in page.inner_text("#published")
    cells = page.locator("#confusion-PublicTest td.cell a").evaluate_all(
        "els => els.map(a => [a.dataset.true, a.dataset.predicted, Number(a.title.split(' ')[0])])")
    true, predicted, count = max(((int(t), int(p), n) for t, p, n in cells if t != p), key=lambda c: c[2])
    assert count > 0
    page.click(f'#confusion-PublicTest a[data-true="{true}"][data-predicted="{predicted}"]')
    page.wait_for_selector("#gallery-grid")
    cell = data.ids(lambda f, p: f.split == Split.PUBLIC_TEST and f.current_label == true
                    and p.predicted_label == predicted)
    assert tile_ids(page) == cell and len(cell) == count
    assert page.input_value("#id_true_label") == str(true) and page.input_value("#id_predicted_label") == str(predicted)

    # Open a face, then ask for the heatmap of a class that is not stored yet.
    face_id = sorted(cell)[0]
    page.click(f'#gallery-grid .tile[data-face-id="{face_id}"]')
    page.wait_for_selector("#face-detail")
    assert page.inner_text("#predicted-label") == CLASSES[predicted]
    assert page.locator("#probabilities tr").count() == 7
    stored = set(Explanation.objects.filter(face_id=face_id).values_list("target_label", flat=True))
    other = next(c for c in range(7) if c not in stored)
    before = page.locator("#heatmaps figure.heatmap").count()
    answers = []
    page.on("response", lambda r: answers.append(r.status) if r.request.method == "POST" else None)
    page.select_option("#heatmap-target", str(other))
    page.click("#compute-heatmap button[type=submit]")
    page.wait_for_selector(f'#heatmaps figure.heatmap.fresh[data-target="{other}"]', timeout=60_000)
    assert page.locator("#heatmaps figure.heatmap").count() == before + 1
    assert page.inner_text("#heatmap-status") == "done"
    assert answers[0] == 202 and answers[-1] == 200, answers  # not stored: the worker made it, not the request
    fresh = page.locator(f'#heatmaps figure.heatmap[data-target="{other}"] img')
    page.wait_for_function("img => img.complete && img.naturalWidth === 192", arg=fresh.element_handle())
    assert Explanation.objects.filter(face_id=face_id, target_label=other).exists()


def test_a_heatmap_that_never_arrives_says_so(live_server, page, researcher, gallery_data):
    """The page asks again while the answer is 202, then gives up with a message; the answers come from the test."""
    face = gallery_data.faces[2]
    asked = []

    def pending(route):
        asked.append(route.request.url)
        route.fulfill(status=202, content_type="application/json", body=json.dumps({
            "status": "pending", "detail": "a worker makes it", "poll": route.request.url, "method": "scorecam",
            "target_class": None, "model_version": gallery_data.version.pk}))

    page.route("**/explanations*", pending)
    page.clock.install()  # the page's timers and Date, so that five minutes can pass at once
    log_in(page, live_server, researcher.username, f"/gallery/faces/{face.pk}/")
    page.wait_for_selector("#compute-heatmap")
    page.select_option("#heatmap-method", "scorecam")
    page.click("#compute-heatmap button[type=submit]")
    page.wait_for_selector('#heatmap-status[data-state="pending"]')
    assert page.inner_text("#heatmap-status") == "computing scorecam on a worker…"
    page.wait_for_timeout(2_500)
    assert len(asked) >= 2 and all("wait=" in url for url in asked[1:]) and "wait=" not in asked[0]
    page.clock.fast_forward(5 * 60 * 1000 + 1_000)
    page.wait_for_selector('#heatmap-status[data-state="error"]')
    assert "still not ready after 5 minutes" in page.inner_text("#heatmap-status")
    given_up = len(asked)
    page.wait_for_timeout(2_500)
    assert len(asked) == given_up  # it stopped asking


def test_reviewer_is_refused(live_server, page, reviewer, gallery_data):
    log_in(page, live_server, reviewer.username, "/gallery/")
    page.wait_for_load_state()
    assert page.locator("#gallery-grid").count() == 0
    response = page.goto(f"{live_server.url}/gallery/models/{gallery_data.version.pk}/")
    assert response.status == 403


def test_gallery_layer_filter_shows_each_maps_road_beside_it(live_server, page, researcher, gallery_data):
    data = gallery_data
    public = [f for f in data.faces if f.split == Split.PUBLIC_TEST]
    explanations_compute(version=data.version, method="layercam", layer="fine",
                         pairs=[(f.pk, data.predictions[f.pk].predicted_label) for f in public])
    faithfulness_compute(version=data.version, methods=["layercam"], layers=["fine"], sample_size=len(public))
    figures = {f.face_id: f for f in FaithfulnessScore.objects.get(layer="fine").faces.all()}

    log_in(page, live_server, researcher.username, "/gallery/")
    page.wait_for_selector("#gallery-grid")
    assert page.locator("#gallery-grid .road").count() == 0  # gradcam on the last layer: not measured
    page.select_option("#id_method", "layercam")
    page.select_option("#id_layer", "fine")
    page.select_option("#id_split", Split.PUBLIC_TEST)
    page.click("#apply-filters")
    page.wait_for_url("**layer=fine**")
    page.wait_for_selector("#faithfulness-per-class")
    assert tile_ids(page) == {f.pk for f in public}
    for face_id, figure in figures.items():
        tile = page.locator(f'#gallery-grid .tile[data-face-id="{face_id}"]')
        assert tile.locator("img.overlay").get_attribute("alt").startswith("layercam (fine layer)")
        text = tile.locator(".road").inner_text()
        assert f"ROAD {figure.road:+.3f}" in text and f"random {figure.baseline:+.3f}" in text
        assert ("beats" in tile.locator(".road").get_attribute("class")) == (figure.road > figure.baseline)
    shares = page.locator("#faithfulness-per-class td").all_inner_texts()
    assert len(shares) == len(CLASSES) and sum(t != "–" for t in shares) >= 1

    # A method that does not suit the fine layer is refused with a clear 400 page.
    response = page.goto(f"{live_server.url}/gallery/?method=gradcam&layer=fine")
    assert response.status == 400 and "does not suit the 'fine' layer" in page.inner_text("main")
