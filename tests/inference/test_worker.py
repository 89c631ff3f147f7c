"""Through a real Celery worker on Redis (tests/conftest.py), reading the test database and the same media folder."""

from __future__ import annotations

import time

import pytest
from django.urls import reverse

from apps.inference.models import Explanation, PredictionChunk
from apps.inference.selectors import prediction_for
from apps.inference.services.chunks import prediction_chunks_create
from apps.inference.services.registry import model_version_activate, model_version_register
from tests.faces.factories import FaceImageFactory

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def predicted_on_the_worker(face_ids: list[int], timeout: float = 120) -> PredictionChunk:
    (chunk,) = prediction_chunks_create(face_ids=face_ids, methods=["gradcam"])  # sent at once: no transaction
    deadline = time.monotonic() + timeout
    while chunk.status not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, f"chunk {chunk.pk} stayed {chunk.status}"
        time.sleep(0.1)
        chunk.refresh_from_db()
    assert chunk.status == "succeeded", chunk.error
    return chunk


def test_a_worker_predicts_and_explains(shared_media_root, tiny_checkpoint):
    version = model_version_register(checkpoint_path=tiny_checkpoint, name="w-v1", activate=True)
    faces = FaceImageFactory.create_batch(3, current_label=4)
    chunk = predicted_on_the_worker([f.pk for f in faces])
    assert chunk.attempts == 1 and chunk.last_sent_at is not None
    for face in faces:
        assert prediction_for(face=face).model_version == version
        explanation = Explanation.objects.filter(face=face, target_label=4).get()
        assert (shared_media_root / explanation.overlay.name).is_file()  # written by the worker


def test_a_worker_picks_up_a_newly_activated_version(shared_media_root, tiny_checkpoint, tiny_checkpoint_v2):
    v1 = model_version_register(checkpoint_path=tiny_checkpoint, name="w-v1", activate=True)
    face = FaceImageFactory()
    predicted_on_the_worker([face.pk])
    assert prediction_for(face=face).model_version == v1

    v2 = model_version_register(checkpoint_path=tiny_checkpoint_v2, name="w-v2")
    model_version_activate(version=v2)
    predicted_on_the_worker([face.pk])
    assert prediction_for(face=face).model_version == v2
    assert prediction_for(face=face, version=v1) is not None
    assert face.explanations.filter(model_version=v2).exists()


def test_status_lists_the_worker_with_its_queues_and_device(client, admin_user, celery_worker_process):
    client.force_login(admin_user)
    body = client.get(reverse("api-status")).json()
    mine = [w for w in body["workers"] if w["name"].startswith("pytest-")]
    assert mine and sorted(mine[0]["queues"]) == ["bulk", "interactive"]
    assert mine[0]["device"] == "CPU" or mine[0]["device"].startswith("CUDA: ")
