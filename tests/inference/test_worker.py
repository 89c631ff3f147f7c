"""Through a real Celery worker on Redis (tests/conftest.py), reading the test database and the same media folder."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.inference.models import Explanation
from apps.inference.selectors import prediction_for
from apps.inference.services.registry import model_version_activate, model_version_register
from apps.inference.tasks import predict_and_explain_task
from tests.faces.factories import FaceImageFactory

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_worker_predicts_and_explains(shared_media_root, tiny_checkpoint):
    version = model_version_register(checkpoint_path=tiny_checkpoint, name="w-v1", activate=True)
    faces = FaceImageFactory.create_batch(3, current_label=4)
    result = predict_and_explain_task.apply_async(args=([f.pk for f in faces], ["gradcam"]))
    assert result.get(timeout=120) == {"faces": 3}
    for face in faces:
        assert prediction_for(face=face).model_version == version
        explanation = Explanation.objects.filter(face=face, target_label=4).get()
        assert (shared_media_root / explanation.overlay.name).is_file()  # written by the worker


def test_a_worker_picks_up_a_newly_activated_version(shared_media_root, tiny_checkpoint, tiny_checkpoint_v2):
    v1 = model_version_register(checkpoint_path=tiny_checkpoint, name="w-v1", activate=True)
    face = FaceImageFactory()
    predict_and_explain_task.delay([face.pk], ["gradcam"]).get(timeout=120)
    assert prediction_for(face=face).model_version == v1

    v2 = model_version_register(checkpoint_path=tiny_checkpoint_v2, name="w-v2")
    model_version_activate(version=v2)
    predict_and_explain_task.delay([face.pk], ["gradcam"]).get(timeout=120)
    assert prediction_for(face=face).model_version == v2
    assert prediction_for(face=face, version=v1) is not None
    assert face.explanations.filter(model_version=v2).exists()


def test_status_lists_the_worker_with_its_queues_and_device(client, admin_user, celery_worker_process):
    client.force_login(admin_user)
    body = client.get(reverse("api-status")).json()
    mine = [w for w in body["workers"] if w["name"].startswith("pytest-")]
    assert mine and mine[0]["queues"] == ["default", "gpu"]
    assert mine[0]["device"] == "CPU" or mine[0]["device"].startswith("CUDA: ")
