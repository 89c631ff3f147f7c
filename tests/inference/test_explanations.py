"""On-demand heatmaps (``apps.inference.services.explanations``), through the face API: the web process never runs the
model; a worker makes each heatmap once; a request answers 200 when it is stored (or lands within ``?wait=``), else
202 with what to ask again. One test goes through a real worker, the others play the worker themselves."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from django.db import connection
from django.urls import reverse

from apps.core.errors import ApplicationError
from apps.inference import runtime
from apps.inference.models import Explanation, Prediction
from apps.inference.selectors import prediction_for
from apps.inference.services.explanations import explanation_make, explanation_request
from apps.inference.services.predictions import TargetInvalid, UnknownCamMethod
from apps.inference.services.registry import model_version_register
from apps.inference.tasks import explain_on_demand_task
from ferplatform.celery import app as celery_app
from ml.labels import CLASSES
from tests.faces.factories import FaceImageFactory

pytestmark = pytest.mark.django_db(transaction=True)  # the sends happen on commit, as in production


@pytest.fixture
def sent(monkeypatch) -> list[tuple]:
    """The on-demand tasks this process sends (their args), counted at the send: nothing reaches a broker, so no
    worker can answer and whatever is stored was stored by the test."""
    calls: list[tuple] = []
    monkeypatch.setattr(explain_on_demand_task, "apply_async", lambda args, **options: calls.append(tuple(args)))
    return calls


@pytest.fixture
def broker_down():
    """The Celery app of this process sends to a port where nothing listens: a real failed connection."""
    previous = celery_app.conf.broker_url
    celery_app.conf.broker_url = "redis://127.0.0.1:1/0"
    celery_app._after_fork()  # drop the pooled connections, so that the next send connects anew
    yield
    celery_app.conf.broker_url = previous
    celery_app._after_fork()


def url_for(face) -> str:
    return reverse("api-face-explanations", args=[face.pk])


def post(client, face, body: dict, wait: float | None = None):
    suffix = "" if wait is None else f"?wait={wait}"
    return client.post(url_for(face) + suffix, body, content_type="application/json")


def test_the_web_process_never_computes_it_answers_202_and_sends_one_task(client, researcher, active_version, sent):
    face = FaceImageFactory()
    client.force_login(researcher)
    loads = runtime.load_count
    response = post(client, face, {"method": "scorecam", "target": "fear"})
    assert response.status_code == 202, response.content
    assert response.json() == {
        "status": "pending", "poll": "http://testserver" + url_for(face), "method": "scorecam", "layer": "last",
        "target_class": "fear", "model_version": active_version.pk,
        "detail": "the scorecam heatmap is being made by a worker: send the same request again to get it",
    }
    assert sent == [(face.pk, active_version.pk, "scorecam", CLASSES.index("fear"))]
    # The predicted class is not known yet: the worker predicts it, not this request.
    response = post(client, face, {"method": "gradcam"})
    assert response.status_code == 202 and response.json()["target_class"] is None
    assert sent[1] == (face.pk, active_version.pk, "gradcam", None)
    assert Explanation.objects.count() == 0 and Prediction.objects.count() == 0
    assert runtime.load_count == loads  # the model was never even loaded here


def test_a_second_identical_request_while_pending_sends_nothing(client, researcher, active_version, sent):
    face = FaceImageFactory()
    client.force_login(researcher)
    for _ in range(3):
        assert post(client, face, {"method": "layercam", "target": 3}).status_code == 202
    assert post(client, face, {"method": "layercam", "target": "happy"}).status_code == 202  # the same class
    assert sent == [(face.pk, active_version.pk, "layercam", 3)]
    assert post(client, face, {"method": "layercam", "target": 4}).status_code == 202  # another heatmap
    assert len(sent) == 2


def test_a_request_after_the_resend_interval_sends_it_again(client, researcher, active_version, sent, settings):
    settings.WORK_RESEND_AFTER = 1  # the one resend window: rows, and hints such as this one
    face = FaceImageFactory()
    client.force_login(researcher)
    assert post(client, face, {"method": "gradcam", "target": 1}).status_code == 202
    assert post(client, face, {"method": "gradcam", "target": 1}).status_code == 202
    assert len(sent) == 1
    time.sleep(1.2)  # a lost message is only a hint: the next request after the interval sends it again
    assert post(client, face, {"method": "gradcam", "target": 1}).status_code == 202
    assert len(sent) == 2


def test_a_heatmap_that_lands_within_wait_is_returned(client, researcher, active_version, sent):
    face = FaceImageFactory()
    client.force_login(researcher)

    def late_worker():
        try:
            time.sleep(0.5)
            explanation_make(face_id=face.pk, version_id=active_version.pk, method="hirescam", target_label=None)
        finally:
            connection.close()

    thread = threading.Thread(target=late_worker)
    started = time.monotonic()
    thread.start()
    response = post(client, face, {"method": "hirescam"}, wait=20)
    elapsed = time.monotonic() - started
    thread.join()
    assert response.status_code == 200, response.content
    body = response.json()
    predicted = prediction_for(face=face).predicted_label  # predicted by the "worker", first
    assert body["method"] == "hirescam" and body["target_label"] == predicted
    assert body["overlay_url"].startswith("http://testserver/media/explanations/")
    assert 0.4 < elapsed < 10 and len(sent) == 1


def test_wait_is_bounded_and_then_the_answer_is_pending(client, researcher, active_version, sent, settings):
    settings.INFERENCE_EXPLAIN_MAX_WAIT_SECONDS = 0.3
    face = FaceImageFactory()
    client.force_login(researcher)
    started = time.monotonic()
    response = post(client, face, {"method": "gradcam", "target": 0}, wait=3600)
    assert response.status_code == 202 and 0.3 <= time.monotonic() - started < 3
    assert post(client, face, {"method": "gradcam"}, wait=-1).status_code == 400


def test_with_tasks_run_inline_the_request_returns_the_heatmap_then_the_stored_one(client, researcher, active_version,
                                                                                   eager_tasks):
    face = FaceImageFactory()
    client.force_login(researcher)
    first = post(client, face, {"method": "hirescam", "target": "fear"}, wait=5)
    assert first.status_code == 200, first.content
    assert first.json()["method"] == "hirescam" and first.json()["target_class"] == "fear"
    second = post(client, face, {"method": "hirescam", "target": 2})  # stored: 200 at once, without waiting
    assert second.status_code == 200 and second.json()["id"] == first.json()["id"]
    assert Explanation.objects.count() == 1
    predicted = post(client, face, {}, wait=5)  # defaults: gradcam, the predicted class
    assert predicted.status_code == 200 and predicted.json()["method"] == "gradcam"
    assert predicted.json()["target_label"] == prediction_for(face=face).predicted_label


def test_a_broker_that_is_down_still_answers_202_and_the_next_request_sends_again(client, researcher, active_version,
                                                                                   broker_down, monkeypatch):
    face = FaceImageFactory()
    client.force_login(researcher)
    started = time.monotonic()
    response = post(client, face, {"method": "gradcam", "target": 5})
    assert response.status_code == 202 and time.monotonic() - started < 10
    assert Explanation.objects.count() == 0
    sent = []
    monkeypatch.setattr(explain_on_demand_task, "apply_async", lambda args, **options: sent.append(tuple(args)))
    assert post(client, face, {"method": "gradcam", "target": 5}).status_code == 202
    assert sent == [(face.pk, active_version.pk, "gradcam", 5)]  # the failed send left no "already sent" mark


def test_the_worker_side_makes_each_heatmap_once_for_any_class_and_method(active_version):
    face = FaceImageFactory()
    assert explanation_make(face_id=face.pk, version_id=active_version.pk, method="eigencam", target_label=4) == 1
    row = Explanation.objects.get()
    assert (row.method, row.target_label) == ("eigencam", CLASSES.index("sad"))
    assert explanation_make(face_id=face.pk, version_id=active_version.pk, method="eigencam", target_label=4) == 0
    assert explanation_make(face_id=face.pk, version_id=active_version.pk, method="gradcam", target_label=None) == 1
    assert Explanation.objects.get(method="gradcam").target_label == prediction_for(face=face).predicted_label
    assert explanation_make(face_id=999999, version_id=active_version.pk, method="gradcam", target_label=1) == 0
    assert explain_on_demand_task(face.pk, active_version.pk, "gradcam", None) == {"computed": 0}


@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "hirescam", "scorecam", "eigencam", "layercam"])
def test_every_required_method_produces_a_map(active_version, method):
    face = FaceImageFactory()
    explanation_make(face_id=face.pk, version_id=active_version.pk, method=method, target_label=3)
    raw = np.frombuffer(bytes(Explanation.objects.get(face=face).raw_map), dtype=np.uint8)
    assert raw.shape == (48 * 48,)


def test_unknown_method_and_target_say_what_is_allowed_before_anything_is_sent(active_version, sent):
    face = FaceImageFactory()
    with pytest.raises(UnknownCamMethod, match="choose one of: gradcam, gradcam\\+\\+, hirescam") as info:
        explanation_request(face=face, version=None, method="magiccam", target_label=0)
    assert isinstance(info.value, ApplicationError) and info.value.status == 400  # a client error, said as such
    with pytest.raises(TargetInvalid, match="expected 0-6 or one of angry"):
        explanation_request(face=face, version=None, method="gradcam", target_label=9)
    assert sent == [] and Explanation.objects.count() == 0


@pytest.mark.worker
def test_a_real_worker_makes_the_heatmap_the_request_waits_for(client, researcher, shared_media_root, tiny_checkpoint,
                                                               celery_worker_process):
    version = model_version_register(checkpoint_path=tiny_checkpoint, name="w-on-demand", activate=True)
    face = FaceImageFactory()
    client.force_login(researcher)
    loads = runtime.load_count
    response = post(client, face, {"method": "gradcam++"}, wait=30)
    for _ in range(3):  # a cold worker loads the model first; the page asks again the same way
        if response.status_code != 202:
            break
        response = post(client, face, {"method": "gradcam++"}, wait=30)
    assert response.status_code == 200, response.content
    explanation = Explanation.objects.get(face=face, model_version=version, method="gradcam++")
    assert explanation.target_label == prediction_for(face=face, version=version).predicted_label
    assert (shared_media_root / explanation.overlay.name).is_file()  # written by the worker
    assert response.json()["id"] == explanation.pk and runtime.load_count == loads  # this process loaded nothing


@pytest.mark.parametrize("path", ["/api/faces/{id}/explanations", "/api/gallery/faces/{id}/explanations",
                                  "/api/uploads/{upload_id}/explanations"])
def test_the_schema_declares_both_answers_and_wait(client, researcher, path):
    client.force_login(researcher)
    schema = client.get(reverse("api-schema"), HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operation = schema["paths"][path]["post"]
    pending = operation["responses"]["202"]["content"]["application/json"]["schema"]
    assert pending == {"$ref": "#/components/schemas/ExplanationPending"}
    fields = schema["components"]["schemas"]["ExplanationPending"]["properties"]
    assert set(fields) == {"status", "detail", "poll", "method", "layer", "target_class", "model_version"}
    status = schema["components"]["schemas"][fields["status"]["allOf"][0]["$ref"].rsplit("/", 1)[1]]
    assert status["enum"] == ["pending"] and fields["target_class"]["nullable"] is True
    assert "200" in operation["responses"] and "wait" in {p["name"] for p in operation["parameters"]}
