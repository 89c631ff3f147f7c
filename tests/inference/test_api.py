from __future__ import annotations

import time

import pytest
from django.urls import reverse

from apps.inference.models import Explanation
from apps.inference.selectors import model_version_active
from apps.inference.services.predictions import predict_and_explain
from apps.inference.services.registry import model_version_register
from tests.api_errors import field_errors
from tests.faces.factories import FaceImageFactory

pytestmark = pytest.mark.django_db


def test_model_list_for_researchers_only(client, reviewer, researcher, active_version):
    client.force_login(reviewer)
    assert client.get(reverse("api-models")).status_code == 403
    client.force_login(researcher)
    body = client.get(reverse("api-models")).json()
    assert body["count"] == 1 and body["results"][0]["status"] == "active"
    assert body["results"][0]["metrics"]["val_accuracy"] == pytest.approx(0.26)


def test_activate_for_admins_only(client, researcher, admin_user, active_version, tiny_checkpoint_v2):
    v2 = model_version_register(checkpoint_path=tiny_checkpoint_v2, name="v2")
    url = reverse("api-model-activate", args=[v2.pk])
    client.force_login(researcher)
    assert client.post(url).status_code == 403
    client.force_login(admin_user)
    response = client.post(url)
    assert response.status_code == 200 and response.json()["status"] == "active"
    assert model_version_active() == v2
    assert client.post(reverse("api-model-activate", args=[999999])).status_code == 404


def test_face_prediction_with_heatmap_urls(client, researcher, active_version):
    face = FaceImageFactory(current_label=6)
    client.force_login(researcher)
    url = reverse("api-face-prediction", args=[face.pk])
    assert client.get(url).json() == {"code": "not_found", "detail": "not predicted by the active version yet"}
    predict_and_explain(face_ids=[face.pk], methods=["gradcam"])
    body = client.get(url).json()
    assert list(body["probabilities"]) == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    assert body["model_version"] == {"id": active_version.pk, "name": "tiny-v1"}
    assert body["predicted_class"] == list(body["probabilities"])[body["predicted_label"]]
    urls = [e["overlay_url"] for e in body["explanations"]]
    assert urls and all(u.startswith("http://testserver/media/explanations/") for u in urls)
    assert {e["target_label"] for e in body["explanations"]} == {6, body["predicted_label"]}
    assert client.get(urls[0]).status_code == 200  # the overlay is served, after the access check


def test_explanation_stored_is_200_missing_is_202(client, researcher, active_version):
    """The endpoint's two answers; tests/inference/test_explanations.py has the worker's side and the waiting."""
    face = FaceImageFactory(current_label=2)
    predict_and_explain(face_ids=[face.pk], methods=["gradcam"])
    client.force_login(researcher)
    url = reverse("api-face-explanations", args=[face.pk])
    stored = client.post(url, {"method": "gradcam", "target": "fear"}, content_type="application/json")
    assert stored.status_code == 200, stored.content
    assert stored.json()["method"] == "gradcam" and stored.json()["target_class"] == "fear"
    assert stored.json()["id"] == Explanation.objects.get(face=face, target_label=2).pk
    predicted = client.post(url, {}, content_type="application/json")  # defaults: gradcam, the predicted class
    assert predicted.status_code == 200 and predicted.json()["target_label"] == face.predictions.get().predicted_label
    count = Explanation.objects.count()
    missing = client.post(url, {"method": "hirescam", "target": "fear"}, content_type="application/json")
    assert missing.status_code == 202 and missing.json()["status"] == "pending"
    assert Explanation.objects.count() == count  # not computed in the request


@pytest.mark.parametrize(("body", "field", "text"), [
    ({"method": "magiccam"}, "method", 'unknown CAM method "magiccam"; choose one of: gradcam, gradcam++'),
    ({"method": "gradcam", "target": "bored"}, "target", "unknown emotion 'bored'"),
    ({"method": "gradcam", "target": 7}, "target", "expected 0-6"),
])
def test_bad_method_or_target_is_a_400(client, researcher, active_version, body, field, text):
    face = FaceImageFactory()
    client.force_login(researcher)
    response = client.post(reverse("api-face-explanations", args=[face.pk]), body, content_type="application/json")
    assert response.status_code == 400 and response["Content-Type"] == "application/json"
    assert text in field_errors(response)[field][0]
    assert Explanation.objects.count() == 0


def test_explanation_without_active_version_is_503(client, researcher):
    face = FaceImageFactory()
    client.force_login(researcher)
    response = client.post(reverse("api-face-explanations", args=[face.pk]), {}, content_type="application/json")
    assert response.status_code == 503 and "no active model version" in response.json()["detail"]


def test_status_for_admins_only(client, reviewer, admin_user, active_version):
    client.force_login(reviewer)
    assert client.get(reverse("api-status")).status_code == 403
    assert client.get(reverse("status")).status_code == 403
    client.force_login(admin_user)
    body = client.get(reverse("api-status")).json()
    assert body["database"]["status"] == "up" and body["broker"] == {**body["broker"], "status": "up",
                                                                      "transport": "redis"}
    assert set(body["queues"]) == {"interactive", "bulk", "chores"}
    assert all(isinstance(n, int) for n in body["queues"].values())
    assert body["active_model"]["name"] == "tiny-v1"
    page = client.get(reverse("status")).content.decode()
    assert 'id="services"' in page and "tiny-v1" in page


def test_status_when_the_broker_is_down_answers_fast(client, admin_user, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    client.force_login(admin_user)
    started = time.monotonic()
    response = client.get(reverse("api-status"))
    assert time.monotonic() - started < 3
    body = response.json()
    assert response.status_code == 200 and body["broker"]["status"] == "down" and body["workers"] == []
    assert body["active_model"] is None and "broker is down" in body["workers_error"]
    assert client.get(reverse("status")).status_code == 200


def test_api_docs_use_local_assets_and_list_the_inference_endpoints(client, reviewer):
    client.force_login(reviewer)
    docs = client.get(reverse("api-docs")).content.decode()
    assert "cdn." not in docs and "/static/drf_spectacular_sidecar/swagger-ui-dist/" in docs
    schema = client.get(reverse("api-schema"), HTTP_ACCEPT="application/json").json()
    for path in ("/api/models/", "/api/models/{id}/activate", "/api/faces/{id}/prediction",
                 "/api/faces/{id}/explanations", "/api/status/"):
        assert path in schema["paths"], path


def test_home_links_the_status_page_for_admins_only(client, reviewer, admin_user):
    client.force_login(reviewer)
    assert reverse("status") not in client.get(reverse("home")).content.decode()
    client.force_login(admin_user)
    page = client.get(reverse("home")).content.decode()
    assert reverse("status") in page and reverse("admin:inference_modelversion_changelist") in page
