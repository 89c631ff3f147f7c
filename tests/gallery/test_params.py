"""A gallery page and its API parse their parameters with one parser, so they answer the same input the same way;
and the evaluation page and API show one evaluation."""

from __future__ import annotations

import html

import pytest

from tests.api_errors import error_body

pytestmark = pytest.mark.django_db


def pairs(version, other):
    """(page URL, API URL, query, status): the same bad (or good) input to a page and to its API."""
    v = version.pk
    return [
        ("/gallery/", "/api/gallery/faces/", {"method": "nosuchcam"}, 400),
        ("/gallery/", "/api/gallery/faces/", {"version": 999999}, 404),
        ("/gallery/", "/api/gallery/faces/", {"version": "abc"}, 404),
        ("/gallery/compare/", "/api/gallery/compare", {"a": v, "b": other.pk, "method": "nosuchcam"}, 400),
        ("/gallery/compare/", "/api/gallery/compare", {"a": v, "b": other.pk, "split": "Upload"}, 400),
        ("/gallery/compare/", "/api/gallery/compare", {"a": v, "b": other.pk, "split": "PrivateTest"}, 400),
        ("/gallery/compare/", "/api/gallery/compare", {"a": v, "b": other.pk, "changed": "maybe"}, 400),
        ("/gallery/compare/", "/api/gallery/compare", {"a": v, "b": 999999}, 404),
        ("/gallery/compare/", "/api/gallery/compare", {"a": v, "b": other.pk, "changed": "no"}, 200),
        (f"/gallery/models/{v}/class-maps.png", f"/api/gallery/models/{v}/class-maps", {"by": "sideways"}, 400),
        (f"/gallery/models/{v}/class-maps.png", f"/api/gallery/models/{v}/class-maps", {"method": "x"}, 400),
        (f"/gallery/models/{v}/class-maps.png", f"/api/gallery/models/{v}/class-maps",
         {"split": "PrivateTest"}, 400),
        (f"/gallery/models/{v}/class-maps.png", f"/api/gallery/models/{v}/class-maps", {"by": "true"}, 200),
    ]


def test_pages_and_their_apis_answer_the_same_input_the_same_way(client, researcher, gallery_data, second_version):
    client.force_login(researcher)
    for page, api, query, status in pairs(gallery_data.version, second_version):
        page_response, api_response = client.get(page, query), client.get(api, query)
        assert (page_response.status_code, api_response.status_code) == (status, status), (page, query)
        if status != 200:
            body = error_body(api_response)
            # The page says what the API says, in words (no traceback, no generic page).
            assert body["detail"] in html.unescape(page_response.content.decode()), (page, query)


@pytest.mark.parametrize("value, expected", [("0", False), ("false", False), ("no", False), ("1", True),
                                             ("true", True), ("", True)])
def test_changed_means_the_same_on_the_page_and_the_api(client, researcher, gallery_data, second_version, value,
                                                        expected):
    client.force_login(researcher)
    query = {"a": gallery_data.version.pk, "b": second_version.pk, "changed": value}
    assert client.get("/gallery/compare/", query).context["changed_only"] is expected
    body = client.get("/api/gallery/compare", query).json()
    assert body["count"] >= 0  # parsed, not refused


def test_the_evaluation_page_and_api_show_one_evaluation(client, researcher, gallery_data):
    client.force_login(researcher)
    version = gallery_data.version
    api = client.get(f"/api/gallery/models/{version.pk}/evaluation").json()
    page = client.get(f"/gallery/models/{version.pk}/").context
    assert [e["split"] for e in api["evaluations"]] == [e["split"] for e in page["evaluations"]]
    assert api["evaluations"][0]["metrics"]["accuracy"] == page["evaluations"][0]["metrics"]["accuracy"]
    assert api["history"] == page["history"] and api["class_distribution"] == page["distribution"]
    assert [f["method"] for f in api["faithfulness"]] == [f.method for f in page["faithfulness"]]
    assert all(f["measured_here"] is False for f in api["published"]) and len(api["published"]) == 2
