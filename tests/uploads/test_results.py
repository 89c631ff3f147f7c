"""Results: predictions and heatmaps reach the upload, ``?wait`` returns them, heatmaps are made on demand by a worker.

Tasks run inline here (``eager_tasks``); test_worker.py sends them through a real worker.
"""

from __future__ import annotations

import threading
import time

import pytest

from apps.inference.models import Explanation, Prediction, PredictionFailure
from apps.inference.services.predictions import prediction_failures_record
from apps.inference.tasks import explain_on_demand_task
from apps.uploads.models import Upload
from tests.api_errors import field_errors

from . import samples

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/uploads/"


@pytest.fixture
def no_tasks(monkeypatch):
    """Queue nothing: a session's real worker (test_worker.py) must not answer tests that play the worker."""
    import apps.uploads.services as services

    monkeypatch.setattr(services, "prediction_chunks_create", lambda **kwargs: [])


def upload_one(client, **query) -> dict:
    suffix = "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""
    response = client.post(URL + suffix, {"images": [samples.upload_file(samples.face48(), "face.png", "image/png")]},
                           format="multipart")
    assert response.status_code == 201, response.content
    return response.json()["uploads"][0]


def test_finished_upload_has_probabilities_and_heatmap(client, active_version, eager_tasks):
    upload = upload_one(client, wait=5)
    assert upload["status"] == "done"
    probabilities = upload["probabilities"]
    assert list(probabilities) == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    assert abs(sum(probabilities.values()) - 1) < 1e-3
    assert upload["predicted_label"] == max(probabilities, key=probabilities.get)
    assert upload["model_version"] == {"id": active_version.pk, "name": "tiny-v1"}
    (heatmap,) = upload["heatmaps"]
    assert heatmap["method"] == "gradcam" and heatmap["target_label"] == upload["predicted_label"]
    assert heatmap["url"].startswith("http://testserver/media/explanations/")
    assert client.get(heatmap["url"]).status_code == 200
    assert client.get(upload["face_url"]).status_code == 200
    detail = client.get(f"{URL}{upload['id']}/").json()
    assert detail["status"] == "done" and detail["probabilities"] == probabilities
    assert Upload.objects.get(pk=upload["id"]).finished_at is not None


def test_several_methods_are_all_made_before_done(client, active_version, eager_tasks):
    upload = upload_one(client, wait=5, methods="gradcam,layercam")
    assert upload["status"] == "done"
    assert sorted(h["method"] for h in upload["heatmaps"]) == ["gradcam", "layercam"]


def test_status_follows_the_stored_rows(client, active_version, no_tasks):
    upload = upload_one(client)  # nothing queued: nothing happens by itself
    detail = client.get(f"{URL}{upload['id']}/?wait=0.2").json()
    assert detail["status"] == "queued" and detail["probabilities"] is None
    face = Upload.objects.get(pk=upload["id"]).face
    Prediction.objects.create(face=face, model_version=active_version, probabilities=[0.1, 0, 0, 0.6, 0.1, 0.1, 0.1],
                              predicted_label=3, confidence=0.6)
    detail = client.get(f"{URL}{upload['id']}/").json()
    assert detail["status"] == "processing" and detail["predicted_label"] == "happy"  # the heatmap is still due
    assert detail["confidence"] == pytest.approx(0.6)


def test_reads_never_write_the_upload_row(client, active_version, no_tasks):
    upload = upload_one(client)
    row = Upload.objects.get(pk=upload["id"])
    face = row.face
    Prediction.objects.create(face=face, model_version=active_version, probabilities=[0.1, 0, 0, 0.6, 0.1, 0.1, 0.1],
                              predicted_label=3, confidence=0.6)
    assert client.get(f"{URL}{upload['id']}/").json()["status"] == "processing"
    assert client.get(URL).json()["results"][0]["status"] == "processing"
    after = Upload.objects.get(pk=upload["id"])
    # What the GETs showed was derived from the stored rows, not written back.
    assert (after.status, after.finished_at, after.model_version_id) == ("queued", None, row.model_version_id)


def test_the_worker_records_the_state_after_each_chunk(client, active_version, eager_tasks):
    upload = upload_one(client, methods="gradcam")
    row = Upload.objects.get(pk=upload["id"])
    assert (row.status, row.model_version_id) == ("done", active_version.pk) and row.finished_at is not None


def test_wait_returns_as_soon_as_the_result_is_stored(client, active_version, eager_tasks):
    from apps.inference.services.predictions import predict_and_explain

    upload = upload_one(client, methods="gradcam", no_face="use_whole")
    Prediction.objects.all().delete()
    Explanation.objects.all().delete()
    Upload.objects.filter(pk=upload["id"]).update(status=Upload.Status.QUEUED, finished_at=None)
    face_id = upload["face_id"]

    def late_worker():
        time.sleep(0.5)
        predict_and_explain(face_ids=[face_id], methods=["gradcam"])

    thread = threading.Thread(target=late_worker)
    started = time.monotonic()
    thread.start()
    detail = client.get(f"{URL}{upload['id']}/?wait=20").json()
    elapsed = time.monotonic() - started
    thread.join()
    assert detail["status"] == "done" and detail["heatmaps"]
    assert 0.4 < elapsed < 10


def test_wait_is_bounded(client, active_version, settings, no_tasks):
    settings.UPLOADS_MAX_WAIT_SECONDS = 0.3
    upload = upload_one(client)
    started = time.monotonic()
    detail = client.get(f"{URL}{upload['id']}/?wait=3600").json()
    assert detail["status"] == "queued" and time.monotonic() - started < 3


def test_a_failed_prediction_is_reported(client, active_version, no_tasks):
    upload = upload_one(client)
    prediction_failures_record(face_ids=[upload["face_id"]], error="RuntimeError: out of memory")
    detail = client.get(f"{URL}{upload['id']}/").json()
    assert detail["status"] == "failed" and detail["error"] == "RuntimeError: out of memory"
    assert PredictionFailure.objects.count() == 1


def test_heatmap_on_demand_is_made_once(client, active_version, eager_tasks):
    upload = upload_one(client, wait=5)
    url = f"{URL}{upload['id']}/explanations"
    first = client.post(f"{url}?wait=5", {"method": "scorecam"}, format="json")  # the (inline) worker answers
    assert first.status_code == 200, first.content
    assert first.json()["method"] == "scorecam" and first.json()["target_label"] == upload["predicted_label"]
    count = Explanation.objects.count()
    again = client.post(url, {"method": "scorecam"}, format="json")
    assert again.json() == first.json() and Explanation.objects.count() == count
    other = client.post(f"{url}?wait=5", {"method": "gradcam++", "target": "sad"}, format="json").json()
    assert other["method"] == "gradcam++" and other["target_label"] == "sad"
    # The detail now lists every stored heatmap for the upload.
    methods = {(h["method"], h["target_label"]) for h in client.get(f"{URL}{upload['id']}/").json()["heatmaps"]}
    assert {("gradcam", upload["predicted_label"]), ("scorecam", upload["predicted_label"]),
            ("gradcam++", "sad")} <= methods


def test_heatmap_on_demand_is_made_by_a_worker_not_the_request(client, active_version, eager_tasks, monkeypatch):
    upload = upload_one(client, wait=5)  # predicted, with its gradcam heatmap
    sent = []  # counted at the send: no worker, inline or real, gets these
    monkeypatch.setattr(explain_on_demand_task, "apply_async", lambda args, **options: sent.append(tuple(args)))
    url = f"{URL}{upload['id']}/explanations"
    count = Explanation.objects.count()
    first = client.post(url, {"method": "scorecam"}, format="json")
    assert first.status_code == 202, first.content
    assert first.json()["status"] == "pending" and first.json()["target_class"] == upload["predicted_label"]
    assert first.json()["poll"] == f"http://testserver{url}"
    again = client.post(f"{url}?wait=0.3", {"method": "scorecam"}, format="json")  # waits, then still pending
    assert again.status_code == 202
    assert Explanation.objects.count() == count and len(sent) == 1  # nothing computed here; one task sent
    stored = client.post(url, {"method": "gradcam"}, format="json")  # stored at upload: 200 at once, nothing sent
    assert stored.status_code == 200 and stored.json()["method"] == "gradcam" and len(sent) == 1


def test_heatmap_request_errors(client, active_version, no_tasks):
    upload = upload_one(client)  # not predicted yet
    url = f"{URL}{upload['id']}/explanations"
    response = client.post(url, {"method": "nosuchcam"}, format="json")
    assert response.status_code == 400 and "nosuchcam" in response.json()["detail"]
    response = client.post(url, {"method": "gradcam", "target": "bored"}, format="json")
    assert response.status_code == 400 and "bored" in response.json()["detail"]
    response = client.post(url, {}, format="json")
    assert response.status_code == 400 and "method" in field_errors(response)
    response = client.post(url, {"method": "gradcam"}, format="json")
    assert response.status_code == 409 and "not ready" in response.json()["detail"]
    no_face = client.post(URL, {"images": [samples.upload_file(samples.jpeg(200, 150), "x.jpg")]},
                          format="multipart").json()["uploads"][0]
    response = client.post(f"{URL}{no_face['id']}/explanations", {"method": "gradcam"}, format="json")
    assert response.status_code == 409 and "no face" in response.json()["detail"]
