"""The OpenAPI schema says what the upload endpoints really answer."""

from __future__ import annotations

import pytest

from . import samples

pytestmark = pytest.mark.django_db

URL = "/api/uploads/"


@pytest.fixture
def schema(client) -> dict:
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def test_the_list_is_declared_as_the_page_it_answers(client, schema):
    client.post(URL, {"images": [samples.upload_file(samples.face48(), "f.png", "image/png")]}, format="multipart")
    operation = schema["paths"][URL]["get"]
    declared = resolve(schema, operation["responses"]["200"]["content"]["application/json"]["schema"])
    body = client.get(URL).json()
    assert declared.get("type") == "object", declared
    assert set(body) == set(declared["properties"]) == {"count", "next", "previous", "results"}
    assert set(declared["required"]) <= set(body)
    items = resolve(schema, declared["properties"]["results"]["items"])
    assert set(body["results"][0]) == set(items["properties"])
    assert {"page", "page_size"} <= {p["name"] for p in operation["parameters"]}


def test_create_declares_the_413_and_415_it_answers(schema):
    responses = schema["paths"][URL]["post"]["responses"]
    for code in ("413", "415"):
        assert responses[code]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    explanations = schema["paths"][URL + "{upload_id}/explanations"]["post"]["responses"]
    assert explanations["409"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


def test_the_faces_and_the_photo_are_declared_as_answered(client, schema):
    created = client.post(URL, {"images": [samples.upload_file(samples.group_jpeg(2), "g.jpg")]}, format="multipart")
    upload = created.json()["uploads"][0]
    detail = schema["paths"][URL + "{upload_id}/"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    declared = resolve(schema, detail)
    assert set(upload) == set(declared["properties"])
    face = resolve(schema, declared["properties"]["faces"]["items"])
    assert len(upload["faces"]) == 2 and set(upload["faces"][0]) == set(face["properties"])
    assert "face" in resolve(schema, schema["paths"][URL + "{upload_id}/explanations"]["post"]["requestBody"][
        "content"]["application/json"]["schema"])["properties"]
    photo = schema["paths"][URL + "{upload_id}/photo"]["get"]["responses"]
    assert set(photo["200"]["content"]) == {"image/jpeg"}
    assert photo["410"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert client.get(upload["photo_url"]).status_code == 200
