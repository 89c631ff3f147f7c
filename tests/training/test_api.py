"""Training API and page: admins only; start, list, detail, cancel, retry; promote and roll back versions."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from apps.inference.models import InferenceJob, ModelVersion
from apps.inference.selectors import model_version_active
from apps.inference.services.registry import model_version_register
from apps.review.models import ScoringRun
from apps.training.execution import training_run_execute
from apps.training.models import TrainingRun
from apps.training.services import training_run_start
from tests.api_errors import error_body, field_errors
from tests.helpers import api_client

from .conftest import BAD, run_kwargs

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("role", ["reviewer", "researcher"])
def test_non_admins_are_refused_everywhere(request, role, client, random_active_version):
    user = request.getfixturevalue(role)
    run = TrainingRun.objects.create(trigger="api", recipe_name="scoring", arch="fer_vgg", epochs=1)
    api = api_client(user)
    assert api.post("/api/training-runs/", {"recipe": "default"}, format="json").status_code == 403
    assert api.get("/api/training-runs/").status_code == 403
    assert api.get(f"/api/training-runs/{run.pk}/").status_code == 403
    assert api.post(f"/api/training-runs/{run.pk}/cancel").status_code == 403
    assert api.post(f"/api/training-runs/{run.pk}/retry").status_code == 403
    assert api.post(f"/api/models/{random_active_version.pk}/promote").status_code == 403
    assert api.post("/api/models/rollback").status_code == 403
    assert api.get("/api/models/comparison").status_code == 403
    assert TrainingRun.objects.count() == 1
    client.force_login(user)
    assert client.get(reverse("training")).status_code == 403
    assert "link-training" not in client.get(reverse("home")).content.decode()


def test_anonymous_users_go_to_the_login_page(client):
    response = client.get(reverse("training"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert APIClient().post("/api/training-runs/", {}, format="json").status_code in (401, 403)


def test_admin_page_shows_the_form_and_the_home_link(client, admin_user, faces):
    client.force_login(admin_user)
    page = client.get(reverse("training")).content.decode()
    assert 'id="retrain-form"' in page and 'value="default"' in page and "crossentropy" in page
    assert "training/training.js" in page
    assert 'id="link-training"' in client.get(reverse("home")).content.decode()


def test_admin_starts_a_run_and_a_second_is_refused(admin_user, faces, django_capture_on_commit_callbacks):
    api = api_client(admin_user)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api.post("/api/training-runs/", {"recipe": "scoring", "epochs": 2, "soft_label_mode": "probability"},
                            format="json")
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["status"] == "queued" and body["epochs"] == 2 and body["soft_label_mode"] == "probability"
    assert body["trigger"] == "admin" and body["created_by"] == admin_user.username
    assert len(callbacks) == 1

    second = api.post("/api/training-runs/", {"recipe": "default"}, format="json")
    assert second.status_code == 409
    assert f"training run #{body['id']} is queued" in second.json()["detail"]

    bad = api.post("/api/training-runs/", {"recipe": "nope"}, format="json")
    assert bad.status_code == 400 and "recipe" in field_errors(bad)


def test_token_clients_are_recorded_as_api_trigger(admin_user, faces, django_capture_on_commit_callbacks):
    api = api_client(admin_user, token=True)
    with django_capture_on_commit_callbacks(execute=False):
        response = api.post("/api/training-runs/", {"recipe": "scoring", "epochs": 1}, format="json")
    assert response.status_code == 202 and response.json()["trigger"] == "api"


@pytest.mark.parametrize("seed", [-1, 2**31, 10**40])
def test_a_seed_outside_0_to_2_31_is_a_400_naming_the_field(admin_user, seed):
    response = api_client(admin_user).post("/api/training-runs/", {"recipe": "scoring", "epochs": 1, "seed": seed},
                                           format="json")
    assert response.status_code == 400, response.content
    assert "seed" in field_errors(response)
    assert not TrainingRun.objects.exists()


def test_the_largest_seed_is_accepted(admin_user, faces, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        response = api_client(admin_user).post("/api/training-runs/", {"recipe": "scoring", "epochs": 1,
                                                                       "seed": 2**31 - 1}, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["seed"] == 2**31 - 1


def test_list_detail_cancel_and_retry(admin_user, faces):
    api = api_client(admin_user)
    run = training_run_execute(run_id=training_run_start(**run_kwargs(epochs=2)).pk)
    listed = api.get("/api/training-runs/").json()
    assert [r["id"] for r in listed] == [run.pk]
    detail = api.get(f"/api/training-runs/{run.pk}/").json()
    assert detail["status"] == "succeeded" and len(detail["progress"]) == 2
    assert detail["metrics"]["candidate"]["current"]["accuracy"] >= 0
    assert detail["metrics"]["candidate"]["original"]["accuracy"] >= 0
    assert detail["model_version_status"] == "active" and detail["promoted"] is True
    assert "snapshot_labels" not in detail

    assert api.post(f"/api/training-runs/{run.pk}/cancel").status_code == 409  # finished already
    assert api.post(f"/api/training-runs/{run.pk}/retry").status_code == 409  # only failed runs
    assert error_body(api.get("/api/training-runs/99999/")) == {"code": "not_found", "detail": "no training run 99999"}

    queued = training_run_start(**run_kwargs())
    response = api.post(f"/api/training-runs/{queued.pk}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"


def test_manual_promote_and_rollback(admin_user, faces, settings, django_capture_on_commit_callbacks):
    api = api_client(admin_user)
    good = training_run_execute(run_id=training_run_start(**run_kwargs(epochs=8)).pk)
    bad = training_run_execute(run_id=training_run_start(**run_kwargs(recipe_overrides=BAD)).pk)
    assert bad.model_version.status == ModelVersion.Status.READY and bad.promoted is False

    settings.INFERENCE_REFRESH_ON_ACTIVATE = True
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api.post(f"/api/models/{bad.model_version.pk}/activate")  # the training page's Promote button
    assert response.status_code == 200 and response.json()["status"] == "active"
    assert model_version_active() == bad.model_version
    good.model_version.refresh_from_db()
    assert good.model_version.status == ModelVersion.Status.ARCHIVED
    # Promotion queued PublicTest predictions and a re-ranking of the queue: in-sample with the new version, then
    # the refining short run (all sent after commit).
    assert InferenceJob.objects.filter(split="PublicTest", created_by=admin_user).count() == 1
    queued = ScoringRun.objects.filter(created_by=admin_user, status="queued").order_by("pk")
    assert [(r.method, r.model_version_id) for r in queued] == [("in_sample", bad.model_version.pk),
                                                                ("short_run", bad.model_version.pk)]
    assert len(callbacks) == 3

    response = api.post("/api/models/rollback")
    assert response.status_code == 200 and response.json()["id"] == good.model_version.pk
    assert model_version_active() == good.model_version

    rejected = model_version_register(checkpoint_path=good.model_version.checkpoint.path, name="rejected")
    ModelVersion.objects.filter(pk=rejected.pk).update(status=ModelVersion.Status.REJECTED)
    assert api.post(f"/api/models/{rejected.pk}/activate").status_code == 400
    for verb in ("activate", "promote"):  # promote: the deprecated alias, the same view
        missing = api.post(f"/api/models/99999/{verb}")
        assert error_body(missing) == {"code": "not_found", "detail": "no model version 99999"}

    rows = api.get("/api/models/comparison").json()
    by_id = {row["id"]: row for row in rows}
    assert by_id[bad.model_version.pk]["delta_previous"]["accuracy"] < 0
    assert "kept inactive" in by_id[bad.model_version.pk]["gate"]
    assert by_id[good.model_version.pk]["original"]["accuracy"] >= 0


def test_rollback_without_an_earlier_version_is_refused(admin_user, random_active_version):
    response = api_client(admin_user).post("/api/models/rollback")
    assert response.status_code == 400 and "no earlier active version" in response.json()["detail"]


def test_endpoints_are_in_the_openapi_schema(client, admin_user):
    client.force_login(admin_user)
    schema = client.get(reverse("api-schema"), HTTP_ACCEPT="application/json").json()
    for path in ("/api/training-runs/", "/api/training-runs/{id}/", "/api/training-runs/{id}/cancel",
                 "/api/training-runs/{id}/retry", "/api/models/{id}/promote", "/api/models/rollback",
                 "/api/models/comparison"):
        assert path in schema["paths"], path
    # One activation endpoint: promote is its deprecated alias.
    assert schema["paths"]["/api/models/{id}/promote"]["post"].get("deprecated") is True
    assert not schema["paths"]["/api/models/{id}/activate"]["post"].get("deprecated")


def test_the_list_carries_the_end_of_each_log_and_the_detail_all_of_it(admin_user):
    log = "a" * 10 + "b" * 4000
    run = TrainingRun.objects.create(trigger="api", recipe_name="scoring", arch="fer_vgg", epochs=1, log=log)
    api = api_client(admin_user)
    (listed,) = api.get("/api/training-runs/").json()
    assert listed["id"] == run.pk and listed["log"] == "b" * 4000
    assert api.get(f"/api/training-runs/{run.pk}/").json()["log"] == log
