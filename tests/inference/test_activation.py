"""One way to activate a model version: the activate and promote APIs, the admin action, rollback and a
registration with ``activate=True`` all give a newly active version the same follow-up work."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.faces.models import Split
from apps.inference.models import InferenceJob, ModelVersion
from apps.inference.services.registry import model_version_register
from apps.review.models import ScoringRun
from tests.faces.factories import FaceImageFactory
from tests.helpers import api_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_versions(tiny_checkpoint, tiny_checkpoint_v2, settings):
    settings.INFERENCE_REFRESH_ON_ACTIVATE = False  # the first activation is not what these tests look at
    first = model_version_register(checkpoint_path=tiny_checkpoint, name="v1", activate=True)
    second = model_version_register(checkpoint_path=tiny_checkpoint_v2, name="v2")
    FaceImageFactory.create_batch(3, split=Split.PUBLIC_TEST)
    settings.INFERENCE_REFRESH_ON_ACTIVATE = True
    return first, second


def follow_up(version: ModelVersion) -> tuple[list[tuple], list[tuple]]:
    jobs = [(j.split, j.total, j.methods, j.status) for j in InferenceJob.objects.filter(model_version=version)]
    runs = [(r.method, r.model_version_id, r.blend_active) for r in
            ScoringRun.objects.filter(status=ScoringRun.Status.QUEUED).order_by("pk")]
    return jobs, runs


def activate_by_api(user, version):
    response = api_client(user).post(f"/api/models/{version.pk}/activate")
    assert response.status_code == 200, response.content


def promote_by_api(user, version):
    response = api_client(user).post(f"/api/models/{version.pk}/promote")
    assert response.status_code == 200, response.content


def activate_by_admin_action(user, version):
    from django.test import Client

    client = Client()
    client.force_login(user)
    response = client.post(reverse("admin:inference_modelversion_changelist"),
                           {"action": "activate_selected", "_selected_action": [version.pk]})
    assert response.status_code == 302


@pytest.mark.parametrize("entry", [activate_by_api, promote_by_api, activate_by_admin_action])
def test_every_entry_point_queues_the_same_follow_up(entry, two_versions, admin_user,
                                                     django_capture_on_commit_callbacks):
    _, second = two_versions
    with django_capture_on_commit_callbacks(execute=False) as sent:
        entry(admin_user, second)
    second.refresh_from_db()
    assert second.status == ModelVersion.Status.ACTIVE
    # The gallery and the evaluation page of the new version get filled; the labels are scored again: in-sample with
    # the new version first (minutes), then the refining short run blended with it.
    assert follow_up(second) == ([(Split.PUBLIC_TEST, 3, ["gradcam"], "queued")],
                                 [("in_sample", second.pk, False), ("short_run", second.pk, True)])
    assert len(sent) == 3  # one predict_split, two score_labels, sent after commit


def test_activating_the_active_version_again_queues_nothing(two_versions, admin_user):
    first, _ = two_versions
    activate_by_api(admin_user, first)
    assert follow_up(first) == ([], [])


def test_rollback_goes_through_the_same_service(two_versions, admin_user):
    first, second = two_versions
    activate_by_api(admin_user, second)
    response = api_client(admin_user).post("/api/models/rollback")
    assert response.status_code == 200 and response.json()["id"] == first.pk
    assert follow_up(first) == ([(Split.PUBLIC_TEST, 3, ["gradcam"], "queued")],
                                [("in_sample", second.pk, False), ("short_run", second.pk, True),  # activating 2nd
                                 ("in_sample", first.pk, False), ("short_run", first.pk, True)])


def test_the_first_activation_queues_predictions_but_no_scoring(tiny_checkpoint):
    FaceImageFactory.create_batch(2, split=Split.PUBLIC_TEST)
    version = model_version_register(checkpoint_path=tiny_checkpoint, name="first", activate=True)
    assert follow_up(version) == ([(Split.PUBLIC_TEST, 2, ["gradcam"], "queued")], [])
