"""The gallery's filters, alone and combined, on the API and the page, against real predictions."""

from __future__ import annotations

import re

import pytest

from apps.faces.models import Split

pytestmark = pytest.mark.django_db

REVIEWED = "reviewed"


def api_ids(client, **query) -> list[int]:
    response = client.get("/api/gallery/faces/", query)
    assert response.status_code == 200, response.content
    return [row["face_id"] for row in response.json()["results"]]


def page_ids(client, **query) -> list[int]:
    response = client.get("/gallery/", query)
    assert response.status_code == 200
    return [int(pk) for pk in re.findall(r'class="tile[^"]*" data-face-id="(\d+)"', response.content.decode())]


@pytest.fixture
def researcher_client(client, researcher):
    client.force_login(researcher)
    return client


def _reviewed(data):
    return {data.settled.pk, data.relabelled.pk}


CASES = {
    "all": ({}, lambda d, f, p: True),
    "split": ({"split": Split.PUBLIC_TEST}, lambda d, f, p: f.split == Split.PUBLIC_TEST),
    "true_label": ({"true_label": "@true"}, lambda d, f, p: f.current_label == d.faces[0].current_label),
    "predicted_label": ({"predicted_label": "@pred"},
                        lambda d, f, p: p.predicted_label == d.predictions[d.faces[1].pk].predicted_label),
    "correct": ({"correct": "true"}, lambda d, f, p: p.predicted_label == f.current_label),
    "wrong": ({"correct": "false"}, lambda d, f, p: p.predicted_label != f.current_label),
    "confidence": ({"confidence_min": "@median", "confidence_max": "1"}, lambda d, f, p: p.confidence >= d.median),
    "reviewed": ({"reviewed": "true"}, lambda d, f, p: f.pk in _reviewed(d)),
    "not_reviewed": ({"reviewed": "false"}, lambda d, f, p: f.pk not in _reviewed(d)),
    "split+wrong": ({"split": Split.PUBLIC_TEST, "correct": "false"},
                    lambda d, f, p: f.split == Split.PUBLIC_TEST and p.predicted_label != f.current_label),
    "split+correct+reviewed": ({"split": Split.PUBLIC_TEST, "correct": "true", "reviewed": "true"},
                               lambda d, f, p: f.split == Split.PUBLIC_TEST and p.predicted_label == f.current_label
                               and f.pk in _reviewed(d)),
    "cell": ({"true_label": "@true", "predicted_label": "@pred"},
             lambda d, f, p: f.current_label == d.faces[0].current_label
             and p.predicted_label == d.predictions[d.faces[1].pk].predicted_label),
    "faces": ({"faces": "@two"}, lambda d, f, p: f.pk in (d.faces[0].pk, d.faces[1].pk)),
    "training+confidence": ({"split": Split.TRAINING, "confidence_max": "@median"},
                            lambda d, f, p: f.split == Split.TRAINING and p.confidence <= d.median),
}


def _resolve(data, query: dict) -> dict:
    confidences = sorted(p.confidence for p in data.predictions.values())
    data.median = confidences[len(confidences) // 2]
    values = {"@true": data.faces[0].current_label, "@pred": data.predictions[data.faces[1].pk].predicted_label,
              "@median": repr(data.median), "@two": f"{data.faces[0].pk},{data.faces[1].pk}"}
    return {k: values.get(v, v) for k, v in query.items()}


@pytest.mark.parametrize("case", list(CASES))
def test_filters_return_the_right_faces(researcher_client, gallery_data, case):
    query, keep = CASES[case]
    query = _resolve(gallery_data, query)
    expected = gallery_data.ids(lambda f, p: keep(gallery_data, f, p))
    assert set(api_ids(researcher_client, **query)) == expected
    assert set(page_ids(researcher_client, **query)) == expected
    if case in ("all", "reviewed", "wrong"):
        assert expected, "the fixture should make this case non-empty"


def test_correct_and_wrong_split_the_labelled_faces(researcher_client, gallery_data):
    right = set(api_ids(researcher_client, correct="true"))
    wrong = set(api_ids(researcher_client, correct="false"))
    assert right and wrong and not right & wrong
    assert right | wrong == gallery_data.visible


def test_sort_by_confidence_and_label_quality(researcher_client, gallery_data):
    rows = researcher_client.get("/api/gallery/faces/", {"sort": "-confidence"}).json()["results"]
    confidences = [r["confidence"] for r in rows]
    assert confidences == sorted(confidences, reverse=True)
    rows = researcher_client.get("/api/gallery/faces/", {"sort": "quality"}).json()["results"]
    qualities = [r["label_quality"] for r in rows]
    assert qualities == sorted(qualities) and len(qualities) == len(gallery_data.visible)
    assert page_ids(researcher_client, sort="quality") == [r["face_id"] for r in rows]


def test_overlays_are_stored_files_and_missing_ones_are_said(researcher_client, gallery_data):
    rows = {r["face_id"]: r for r in researcher_client.get("/api/gallery/faces/").json()["results"]}
    assert rows[gallery_data.unexplained.pk]["overlay_url"] is None
    others = [r for pk, r in rows.items() if pk != gallery_data.unexplained.pk]
    assert all("/media/explanations/" in r["overlay_url"] for r in others)
    html = researcher_client.get("/gallery/").content.decode()
    assert html.count("no gradcam map stored") == 1
    # Another method has no maps at all: every face is shown alone, with the note.
    html = researcher_client.get("/gallery/", {"method": "layercam"}).content.decode()
    assert html.count("no layercam map stored") == len(rows)


def test_pagination(researcher_client, gallery_data, settings):
    settings.GALLERY_PAGE_SIZE = 4
    body = researcher_client.get("/api/gallery/faces/").json()
    assert body["count"] == len(gallery_data.visible) and len(body["results"]) == 4 and body["next"]
    first, second = page_ids(researcher_client), page_ids(researcher_client, page=2)
    assert len(first) == 4 and len(second) == 4 and not set(first) & set(second)


def test_bad_parameters(researcher_client, gallery_data):
    assert researcher_client.get("/api/gallery/faces/", {"method": "nope"}).status_code == 400
    assert researcher_client.get("/api/gallery/faces/", {"version": 999999}).status_code == 404  # as the page
    assert researcher_client.get("/api/gallery/faces/", {"true_label": 9}).status_code == 400
    assert researcher_client.get("/gallery/", {"version": 999999}).status_code == 404
    assert "filter-errors" in researcher_client.get("/gallery/", {"true_label": 9}).content.decode()
    too_many = ",".join(str(i) for i in range(1, 1002))  # a data-map selection longer than the gallery takes
    response = researcher_client.get("/api/gallery/faces/", {"faces": too_many})
    assert response.status_code == 400 and "at most 1000 face ids" in response.content.decode()
    assert researcher_client.get("/api/gallery/faces/", {"faces": "1,x"}).status_code == 400


def test_other_version_by_id(researcher_client, gallery_data, second_version):
    assert api_ids(researcher_client, version=second_version.pk) == []
    assert "No face matches" in researcher_client.get("/gallery/", {"version": second_version.pk}).content.decode()


def test_page_queries_do_not_grow_with_the_faces(researcher_client, gallery_data, django_assert_max_num_queries):
    """Overlays, label quality and review state come from subqueries: a fixed number of queries per page."""
    with django_assert_max_num_queries(12):
        response = researcher_client.get("/gallery/", {"sort": "quality"})
    assert response.content.decode().count('class="tile') == len(gallery_data.visible)
    with django_assert_max_num_queries(12):
        assert researcher_client.get("/api/gallery/faces/").status_code == 200


def test_uploads_never_and_private_test_only_for_admins_when_enabled(client, researcher, admin_user, gallery_data,
                                                                     settings):
    upload = next(f for f in gallery_data.faces if f.split == Split.UPLOAD)
    private = gallery_data.ids(lambda f, p: f.split == Split.PRIVATE_TEST, splits=(Split.PRIVATE_TEST,))
    assert upload.pk in gallery_data.predictions and len(private) == 2
    settings.GALLERY_SHOW_PRIVATE_TEST = True
    for user, sees_private in ((researcher, False), (admin_user, True)):
        client.force_login(user)
        shown = set(api_ids(client))
        assert shown == gallery_data.visible | (private if sees_private else set())
        assert set(page_ids(client)) == shown
        assert set(api_ids(client, split=Split.PRIVATE_TEST)) == (private if sees_private else set())
        assert client.get("/api/gallery/faces/", {"split": Split.UPLOAD}).status_code == 400
        assert client.get(f"/gallery/faces/{upload.pk}/").status_code == 404
        assert client.get(f"/api/gallery/faces/{upload.pk}").status_code == 404
        assert client.post(f"/api/gallery/faces/{upload.pk}/explanations", {},
                           content_type="application/json").status_code == 404
        pk = sorted(private)[0]
        assert client.get(f"/gallery/faces/{pk}/").status_code == (200 if sees_private else 404)
    settings.GALLERY_SHOW_PRIVATE_TEST = False
    assert set(api_ids(client)) == gallery_data.visible  # the admin again, with the setting off
