"""One error shape for every 4xx of the API, rendered by one handler and declared in the OpenAPI schema."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.api_errors import error_body, field_errors
from tests.faces.factories import FaceImageFactory

pytestmark = pytest.mark.django_db


def client_for(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


# (who, method, path, body, status, code): one bad request of each style the five APIs used to answer differently.
CASES = [
    ("reviewer", "post", "/api/review/items/999999/votes", {"choice": 1}, 404, "not_found"),  # ReviewError
    ("reviewer", "post", "/api/review/items/999999/votes", {"choice": 42}, 400, "invalid"),  # field validation
    ("reviewer", "post", "/api/review/votes/undo", None, 404, "not_found"),
    ("admin", "post", "/api/review/scoring-runs", {"folds": 1}, 400, "invalid"),
    ("admin", "post", "/api/training-runs/", {"recipe": "nope"}, 400, "invalid"),
    ("admin", "post", "/api/training-runs/999999/cancel", None, 404, "not_found"),
    ("admin", "post", "/api/models/999999/activate", None, 404, "not_found"),
    ("admin", "post", "/api/models/rollback", None, 400, "model_version_invalid"),
    ("researcher", "get", "/api/faces/{face}/prediction", None, 404, "not_found"),
    ("researcher", "post", "/api/faces/{face}/explanations", {"method": "magiccam"}, 400, "invalid"),
    ("researcher", "post", "/api/faces/{face}/explanations", {"method": "gradcam"}, 503, "no_active_model"),
    ("researcher", "get", "/api/gallery/faces/", None, 404, "unknown_model_version"),
    ("researcher", "get", "/api/gallery/compare?a=1", None, 400, "bad_parameter"),
    ("admin", "post", "/api/gallery/models/999999/faithfulness", {}, 404, "not_found"),
    ("reviewer", "get", "/api/uploads/00000000-0000-0000-0000-000000000000/", None, 404, "not_found"),
    ("reviewer", "post", "/api/uploads/", None, 400, "no_files"),
    ("reviewer", "get", "/api/gallery/faces/", None, 403, "permission_denied"),
    (None, "get", "/api/review/stats", None, 401, "not_authenticated"),
]


@pytest.mark.parametrize(("who", "method", "path", "body", "status", "code"), CASES,
                         ids=[f"{c[1]} {c[2]} {c[4]}" for c in CASES])
def test_every_error_has_the_one_shape(who, method, path, body, status, code, reviewer, researcher, admin_user):
    user = {"reviewer": reviewer, "researcher": researcher, "admin": admin_user, None: None}[who]
    path = path.format(face=FaceImageFactory().pk)
    response = getattr(client_for(user), method)(path, body, format="json" if body is not None else None)
    assert response.status_code == status, response.content
    assert error_body(response)["code"] == code


def test_field_errors_name_each_field(admin_user):
    response = client_for(admin_user).post("/api/training-runs/", {"recipe": "nope", "epochs": 0}, format="json")
    errors = field_errors(response)
    assert set(errors) == {"recipe", "epochs"}
    assert "recipe" in response.json()["detail"] and "epochs" in response.json()["detail"]


def test_an_internal_value_error_is_not_a_client_error(researcher, monkeypatch):
    """``except ValueError`` -> 400 used to hide bugs; an unexpected error stays a server error."""
    import apps.inference.api as inference_api

    def broken(**kwargs):
        raise ValueError("a bug, not the client's fault")

    monkeypatch.setattr(inference_api, "explanation_request", broken)
    client = client_for(researcher)
    client.raise_request_exception = True
    with pytest.raises(ValueError, match="a bug"):
        client.post(f"/api/faces/{FaceImageFactory().pk}/explanations", {"method": "gradcam"}, format="json")


def test_the_schema_declares_the_error_body_on_every_4xx(admin_user):
    response = client_for(admin_user).get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    schema = response.json()
    error = schema["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"code", "detail"} and "errors" in error["properties"]
    missing, operations = [], 0
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            operations += 1
            codes = {code for code in operation["responses"] if code.startswith("4")}
            if path not in ("/api/auth/token/",):
                assert {"401", "403"} <= codes, (method, path)
            if "{" in path:
                assert "404" in codes, (method, path)
            for code in codes:
                content = operation["responses"][code].get("content", {})
                ref = content.get("application/json", {}).get("schema", {}).get("$ref", "")
                if ref != "#/components/schemas/Error":
                    missing.append((method, path, code))
    assert operations > 30 and missing == []


# --- a database that does not answer: 503, for the API in its error shape and for pages as the plain error page ------

@pytest.fixture
def database_away(transactional_db):
    """Point this process's connection at a port where nothing listens: every query from then on fails to connect,
    the way it does while PostgreSQL is down (a real connection failure, not a mock). Yields a function that does it
    (objects the test needs are created first)."""
    from django.db import connection

    from tests.faults.stack import free_port

    saved = connection.settings_dict["PORT"]

    def go_away() -> None:
        connection.close()
        connection.settings_dict["PORT"] = str(free_port())

    try:
        yield go_away
    finally:
        connection.close()
        connection.settings_dict["PORT"] = saved


@pytest.mark.django_db(transaction=True)
def test_the_api_answers_a_503_in_the_error_shape_while_the_database_is_away(database_away, reviewer):
    from apps.accounts.services import api_token_create

    secret = api_token_create(user=reviewer)[1]
    database_away()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    response = client.get("/api/uploads/")
    assert response.status_code == 503
    assert error_body(response) == {"code": "database_unavailable",
                                    "detail": "the database is not answering; try again shortly"}
    assert response["Retry-After"] == "5"


@pytest.mark.django_db(transaction=True)
def test_a_page_answers_the_plain_error_page_while_the_database_is_away(database_away, reviewer, settings):
    from django.test import Client

    settings.DEBUG = True  # still no traceback
    client = Client()
    client.force_login(reviewer)
    database_away()
    response = client.get("/")
    assert response.status_code == 503 and response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert 'data-code="database_unavailable"' in page and "the database is not answering" in page
    assert "Traceback" not in page and "OperationalError" not in page and reviewer.username not in page
    assert response["Retry-After"] == "5"


def test_only_connection_failures_are_503s():
    import sqlite3

    import psycopg
    from django.db import InterfaceError, OperationalError

    from apps.core.errors import database_unavailable

    def wrapped(cause: Exception, cls=OperationalError) -> Exception:
        exc = cls(str(cause))
        exc.__cause__ = cause
        return exc

    refused = psycopg.OperationalError("connection failed: Connection refused")  # client-side: no SQLSTATE
    shutting_down = psycopg.errors.lookup("57P01")("terminating connection due to administrator command")
    starting_up = psycopg.errors.lookup("57P03")("the database system is starting up")
    for cause in (refused, shutting_down, starting_up):
        assert database_unavailable(wrapped(cause)).status == 503, cause
    assert database_unavailable(wrapped(psycopg.InterfaceError("closed"), InterfaceError)) is not None
    # About the query, not the database being away: a bug or a conflict, still a 500.
    assert database_unavailable(wrapped(psycopg.errors.lookup("40P01")("deadlock detected"))) is None
    assert database_unavailable(wrapped(psycopg.errors.lookup("57014")("canceling statement"))) is None
    assert database_unavailable(wrapped(sqlite3.OperationalError("no such table: x"))) is None
    assert database_unavailable(ValueError("x")) is None


def test_a_plain_view_under_the_api_answers_json_when_the_database_is_away(rf):
    from apps.core.errors import DatabaseUnavailable
    from apps.core.middleware import unavailable_response

    error = DatabaseUnavailable("the database is not answering; try again shortly")
    response = unavailable_response(rf.get("/api/anything"), error)
    assert response.status_code == 503 and response["Content-Type"] == "application/json"
    assert response["Retry-After"] == "5"
