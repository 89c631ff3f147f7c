"""Comparing two versions: the same faces side by side, and the faces whose prediction changed."""

from __future__ import annotations

import re

import pytest

from apps.inference.models import Prediction
from apps.inference.services.predictions import predict_and_explain

pytestmark = pytest.mark.django_db


@pytest.fixture
def both(gallery_data, second_version):
    public = [f.pk for f in gallery_data.faces if f.split == "PublicTest"]
    predict_and_explain(face_ids=public, methods=["gradcam"], version=second_version)
    a = dict(Prediction.objects.filter(model_version=gallery_data.version).values_list("face_id", "predicted_label"))
    b = dict(Prediction.objects.filter(model_version=second_version).values_list("face_id", "predicted_label"))
    return gallery_data.version, second_version, public, a, b


def test_compare_lists_changed_and_all_faces(client, researcher, both):
    va, vb, public, a, b = both
    client.force_login(researcher)
    changed = {pk for pk in public if a[pk] != b[pk]}
    assert changed, "the two tiny checkpoints should disagree on some faces"
    body = client.get("/api/gallery/compare", {"a": va.pk, "b": vb.pk}).json()
    assert {r["face_id"] for r in body["results"]} == changed
    for row in body["results"]:
        assert row["changed"] and row["a_class"] != row["b_class"]
    body = client.get("/api/gallery/compare", {"a": va.pk, "b": vb.pk, "changed": "false"}).json()
    rows = {r["face_id"]: r for r in body["results"]}
    assert set(rows) == set(public)  # only faces both versions predicted
    for pk, row in rows.items():
        assert (row["changed"], row["a_overlay_url"] is not None, row["b_overlay_url"] is not None) == (
            a[pk] != b[pk], True, True)

    html = client.get("/gallery/compare/", {"a": va.pk, "b": vb.pk, "changed": "1"}).content.decode()
    shown = {int(pk) for pk in re.findall(r'<tr data-face-id="(\d+)"', html)}
    assert shown == changed
    assert f'<strong id="changed-count">{len(changed)}</strong>' in html
    html = client.get("/gallery/compare/", {"a": va.pk, "b": vb.pk, "changed": "0"}).content.decode()
    assert {int(pk) for pk in re.findall(r'<tr data-face-id="(\d+)"', html)} == set(public)
    assert html.count(f"/media/explanations/v{va.pk}/") == len(public)
    assert html.count(f"/media/explanations/v{vb.pk}/") == len(public)


def test_compare_counts_correct_predictions(client, researcher, both):
    va, vb, public, a, b = both
    client.force_login(researcher)
    html = client.get("/gallery/compare/", {"a": va.pk, "b": vb.pk}).content.decode()
    from apps.faces.models import FaceImage

    labels = dict(FaceImage.objects.filter(pk__in=public).values_list("pk", "current_label"))
    a_ok = sum(a[pk] == labels[pk] for pk in public)
    b_ok = sum(b[pk] == labels[pk] for pk in public)
    assert f"{va.name} {a_ok} correct, {vb.name} {b_ok} correct" in html


def test_compare_bad_parameters(client, researcher, both):
    va, vb, *_ = both
    client.force_login(researcher)
    assert client.get("/api/gallery/compare", {"a": va.pk}).status_code == 400
    assert client.get("/api/gallery/compare", {"a": va.pk, "b": 999999}).status_code == 404  # as the page
    assert client.get("/api/gallery/compare", {"a": va.pk, "b": vb.pk, "method": "x"}).status_code == 400
    assert client.get("/gallery/compare/", {"a": va.pk, "b": 999999}).status_code == 404
    assert "Choose two versions" in client.get("/gallery/compare/").content.decode()


def test_same_weights_change_nothing(client, researcher, gallery_data, tiny_checkpoint):
    """A second version with the same weights predicts the same: nothing changed, every face listed under "all"."""
    from apps.inference.services.registry import model_version_register

    copy = model_version_register(checkpoint_path=tiny_checkpoint, name="tiny-v1-copy")
    public = [f.pk for f in gallery_data.faces if f.split == "PublicTest"]
    predict_and_explain(face_ids=public[:6], methods=["gradcam"], version=copy)
    client.force_login(researcher)
    query = {"a": gallery_data.version.pk, "b": copy.pk}
    assert client.get("/api/gallery/compare", query).json()["results"] == []
    rows = client.get("/api/gallery/compare", {**query, "changed": "false"}).json()["results"]
    assert {r["face_id"] for r in rows} == set(public[:6]) and not any(r["changed"] for r in rows)
    html = client.get("/gallery/compare/", query).content.decode()
    assert '<strong id="changed-count">0</strong>' in html and "6 faces predicted by both" in html
