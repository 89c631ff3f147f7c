"""Who created a run or a version is null for automatic ones, and the schema says so."""

from __future__ import annotations

import pytest

from apps.inference.serializers import ModelVersionSerializer
from apps.training.serializers import TrainingRunSerializer
from apps.training.services import training_run_create
from tests.helpers import api_client

from .conftest import run_kwargs

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(admin_user) -> dict:
    response = api_client(admin_user).get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()["components"]["schemas"]


def test_an_automatic_run_and_its_version_have_no_creator_and_the_schema_allows_null(schema, random_active_version):
    run = training_run_create(**run_kwargs(trigger="schedule"))
    assert run.created_by is None and random_active_version.created_by is None
    assert TrainingRunSerializer(run).data["created_by"] is None
    assert ModelVersionSerializer(random_active_version).data["created_by"] is None
    for component in ("TrainingRun", "ModelVersion"):
        field = schema[component]["properties"]["created_by"]
        assert field["type"] == "string" and field.get("nullable") is True, (component, field)
