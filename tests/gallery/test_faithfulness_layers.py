"""Faithfulness per CAM method and layer next to the random-map baseline: per-face figures stored and shown beside each
heatmap, the per-class share of maps that beat the baseline, and the layer filter of the gallery."""

from __future__ import annotations

import math

import pytest
from django.db.models import F

from apps.gallery.models import FaithfulnessFaceScore, FaithfulnessScore
from apps.gallery.selectors import faithfulness_per_class
from apps.gallery.services import faithfulness_compute
from apps.inference.services.predictions import CamLayerInvalid, explanations_compute

pytestmark = pytest.mark.django_db


def test_scores_per_method_and_layer_with_the_baseline_and_per_face_figures(gallery_data):
    version = gallery_data.version
    rows = faithfulness_compute(version=version, methods=["layercam", "hirescam"], layers=["last", "fine"],
                                sample_size=5)
    assert {(r.method, r.layer) for r in rows} == {(m, layer) for m in ("layercam", "hirescam")
                                                   for layer in ("last", "fine")}
    baselines = set()
    for row in rows:
        faces = list(row.faces.all())
        assert len(faces) == row.sample_size == 5
        assert math.isfinite(row.mean) and -1 <= row.baseline_mean <= 1
        assert row.mean == pytest.approx(sum(f.road for f in faces) / 5, abs=1e-6)
        assert row.beats_baseline == pytest.approx(sum(f.beats_baseline for f in faces) / 5)
        baselines.add(tuple(round(f.baseline, 6) for f in faces))
    assert len(baselines) == 1  # one seeded random map per face, scored once, beside every method and layer
    # The layers give different maps, so different figures on the same faces.
    by_key = {(r.method, r.layer): [f.road for f in r.faces.order_by("face_id")] for r in rows}
    assert by_key[("layercam", "last")] != by_key[("layercam", "fine")]
    # Measuring again replaces the score and its per-face figures.
    faithfulness_compute(version=version, methods=["layercam"], layers=["fine"], sample_size=3)
    score = FaithfulnessScore.objects.get(model_version=version, method="layercam", layer="fine")
    assert score.sample_size == 3 and score.faces.count() == 3
    assert FaithfulnessFaceScore.objects.count() == 3 * 5 + 3

    per_class = faithfulness_per_class(version=version, method="layercam", layer="fine", splits=["PublicTest"])
    assert sum(c["faces"] for c in per_class) == 3
    for c in per_class:
        expected = [f for f in score.faces.all() if f.target_label == c["label"]]
        assert c["faces"] == len(expected) and c["beats"] == sum(f.beats_baseline for f in expected)
        assert c["share"] == (c["beats"] / c["faces"] if c["faces"] else None)


def test_a_layer_the_method_does_not_suit_is_refused(gallery_data, client, admin_user):
    with pytest.raises(CamLayerInvalid, match="does not suit"):
        faithfulness_compute(version=gallery_data.version, methods=["gradcam"], layers=["fine"], sample_size=2)
    client.force_login(admin_user)
    response = client.post(f"/api/gallery/models/{gallery_data.version.pk}/faithfulness",
                           {"methods": ["layercam", "gradcam"], "layers": ["fine"]}, content_type="application/json")
    assert response.status_code == 400 and response.json()["code"] == "bad_layer"
    assert not FaithfulnessScore.objects.exists()


def test_gallery_shows_the_layer_each_maps_figure_and_the_share_per_class(gallery_data, client, researcher):
    version = gallery_data.version
    public = [f for f in gallery_data.faces if f.split == "PublicTest"]
    pairs = [(f.pk, gallery_data.predictions[f.pk].predicted_label) for f in public]
    explanations_compute(version=version, method="layercam", pairs=pairs, layer="fine")
    client.force_login(researcher)
    url = f"/gallery/?version={version.pk}&method=layercam&layer=fine&split=PublicTest"
    html = client.get(url).content.decode()
    assert 'id="faithfulness-not-measured"' in html and 'class="road' not in html
    assert html.count("(fine layer) overlay of face") == len(public)

    faithfulness_compute(version=version, methods=["layercam"], layers=["fine"], sample_size=len(public))
    score = FaithfulnessScore.objects.get(method="layercam", layer="fine")
    html = client.get(url).content.decode()
    assert 'id="faithfulness-per-class"' in html
    for face in score.faces.all():
        assert f"ROAD {face.road:+.3f} <small>random {face.baseline:+.3f}</small>" in html
    assert html.count('class="road beats"') == score.faces.filter(road__gt=F("baseline")).count()
    # The last layer's tiles have no fine-layer figures; gradcam on the fine layer is a 400 page.
    assert 'class="road' not in client.get(f"/gallery/?version={version.pk}&method=layercam").content.decode()
    assert client.get(f"/gallery/?version={version.pk}&method=gradcam&layer=fine").status_code == 400
    body = client.get(f"/api/gallery/faces/?version={version.pk}&method=layercam&layer=fine&split=PublicTest").json()
    figures = {r["face_id"]: (r["road"], r["road_baseline"]) for r in body["results"]}
    assert figures == {f.face_id: (pytest.approx(f.road), pytest.approx(f.baseline)) for f in score.faces.all()}
    # The face page shows the figure beside that face's fine-layer heatmap.
    figure = score.faces.first()
    page = client.get(f"/gallery/faces/{figure.face_id}/?version={version.pk}").content.decode()
    assert f"ROAD {figure.road:+.3f} · random {figure.baseline:+.3f}" in page and "(fine layer)" in page
    evaluation = client.get(f"/api/gallery/models/{version.pk}/evaluation").json()["faithfulness"]
    assert [(f["method"], f["layer"], f["beats_baseline"]) for f in evaluation] == [
        ("layercam", "fine", pytest.approx(score.beats_baseline))]
