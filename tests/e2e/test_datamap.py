"""The data map page in a real Chromium: the points drawn where the API puts them, hovering shows the face, the
colour-by switch recolours the points, a dragged rectangle lists exactly the faces inside it, and a map still being
made shows its state. Real faces, the tiny test checkpoint, a real t-SNE layout."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from apps.datamap.models import DataMap, DataMapPoint
from apps.datamap.services import data_map_execute, data_map_start
from apps.faces.models import FaceImage, Split
from tests.datamap import conftest as datamap_fixtures
from tests.e2e.test_csp import RECORD_VIOLATIONS
from tests.e2e.test_gallery import log_in

map_data = datamap_fixtures.map_data  # the data map tests' data set (its checkpoint: tests/conftest.py)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PAD, SIDE = 12, 640  # the canvas's data-padding and size (templates/datamap/map.html)
CLASS_COLOURS = ["#d62728", "#8c564b", "#9467bd", "#2ca02c", "#1f77b4", "#ff7f0e", "#7f7f7f"]  # map.js


def canvas_xy(point: DataMapPoint) -> tuple[int, int]:
    return round(PAD + point.x * (SIDE - 2 * PAD)), round(PAD + (1 - point.y) * (SIDE - 2 * PAD))


def rgb(hex_colour: str) -> list[int]:
    return [int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)]


def pixel(page, x: int, y: int) -> list[int]:
    return page.evaluate("([x, y]) => Array.from(document.getElementById('map-canvas').getContext('2d')"
                         ".getImageData(x, y, 1, 1).data).slice(0, 3)", [x, y])


def test_map_hover_colour_and_rectangle(live_server, page, researcher, map_data, no_worker):
    data_map, _ = data_map_start(version=map_data.version, split=Split.PUBLIC_TEST, method="tsne", user=researcher)
    data_map_execute(map_id=data_map.pk)
    working, _ = data_map_start(version=map_data.version, split=Split.PUBLIC_TEST, method="umap", user=researcher)
    points = list(DataMapPoint.objects.filter(data_map=data_map).order_by("face_id"))  # the order they are drawn
    where = {p.face_id: canvas_xy(p) for p in points}

    page.set_viewport_size({"width": 1280, "height": 1400})  # the whole 640 px canvas on screen, for the mouse
    page.add_init_script(RECORD_VIOLATIONS)  # the Content-Security-Policy holds on this page too
    # A map still queued shows its state, and the button waits for it.
    log_in(page, live_server, researcher.username,
           f"/datamap/?version={map_data.version.pk}&split=PublicTest&method=umap")
    page.wait_for_function(f"() => document.getElementById('map-status').textContent.includes('#{working.pk} is "
                           f"queued')")
    assert page.is_disabled("#start-map")

    page.goto(f"{live_server.url}/datamap/?version={map_data.version.pk}&split=PublicTest&method=tsne")
    page.wait_for_selector(f'#map-canvas[data-points="{len(points)}"]')
    assert f"{len(points)} PublicTest faces" in page.inner_text("#map-status")
    box = page.locator("#map-canvas").bounding_box()

    # Hover the top-most point: its face appears, from the access-checked PNG URL.
    top = points[-1]
    page.mouse.move(box["x"] + where[top.face_id][0], box["y"] + where[top.face_id][1])
    page.wait_for_selector(f'#hover-card:not([hidden])[data-face-id="{top.face_id}"]')
    face = FaceImage.objects.select_related("pixels").get(pk=top.face_id)
    assert page.get_attribute("#hover-card img", "src") == face.pixels.png.url
    page.wait_for_function("() => document.querySelector('#hover-card img').naturalWidth === 48")

    # Colour by label, then by prediction: a point no later point covers, whose two colours differ, changes colour.
    def uncovered(i: int) -> bool:
        x, y = where[points[i].face_id]
        return all(abs(x - where[q.face_id][0]) > 5 or abs(y - where[q.face_id][1]) > 5 for q in points[i + 1:])

    def colour(index):
        return "#c8c8c8" if index is None else CLASS_COLOURS[index]

    candidates = [p for i, p in enumerate(points) if uncovered(i) and colour(p.label) != colour(p.predicted_label)]
    assert candidates, "every point's label and prediction share a colour, or every point is covered"
    probe = candidates[-1]
    assert pixel(page, *where[probe.face_id]) == rgb(colour(probe.label))
    key = "none" if probe.label is None else probe.label
    assert page.get_attribute(f'#legend li[data-key="{key}"]', "data-colour") == colour(probe.label)
    page.select_option("#colour-by", "predicted")
    page.wait_for_selector('#map-canvas[data-colour-by="predicted"]')
    assert pixel(page, *where[probe.face_id]) == rgb(colour(probe.predicted_label))
    page.select_option("#colour-by", "quality")  # PublicTest is never scored: "not scored" grey
    assert pixel(page, *where[probe.face_id]) == rgb("#c8c8c8")
    assert page.locator("#legend li").count() == 4

    # Drag a rectangle over the left part: exactly the faces inside it are listed, each linking to its gallery page.
    right = sorted(x for x, _ in where.values())[len(where) // 2] + 0.5
    page.mouse.move(box["x"] + 1, box["y"] + 1)
    page.mouse.down()
    page.mouse.move(box["x"] + right / 2, box["y"] + SIDE / 2, steps=3)
    page.mouse.move(box["x"] + right, box["y"] + SIDE - 1, steps=3)
    page.mouse.up()
    page.wait_for_selector("#selection:not([hidden])")
    expected = {pk for pk, (x, y) in where.items() if 1 <= x <= right and 1 <= y <= SIDE - 1}
    assert 0 < len(expected) < len(points)
    listed = page.locator("#selection-faces a.selected-face").evaluate_all(
        "els => els.map(a => [Number(a.dataset.faceId), a.getAttribute('href')])")
    assert {pk for pk, _ in listed} == expected and len(listed) == len(expected)
    assert all(href == f"/gallery/faces/{pk}/" for pk, href in listed)
    assert page.inner_text("#selection-count") == str(len(expected))
    # The whole selection opens in the gallery through its face-id filter.
    query = parse_qs(urlsplit(page.get_attribute("#selection-gallery", "href")).query)
    assert {int(pk) for pk in query["faces"][0].split(",")} == expected and query["split"] == [Split.PUBLIC_TEST]
    page.keyboard.press("Escape")
    page.wait_for_selector("#selection", state="hidden")
    assert DataMap.objects.filter(pk=working.pk, status="queued").exists()  # the page only read
    assert page.evaluate("window.__csp") == []
