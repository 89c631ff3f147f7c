"""Researchers and admins see the galleries; reviewers get 403 (unprimed judgement); anonymous users log in."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

PAGES = ["/gallery/", "/gallery/faces/{face}/", "/gallery/compare/", "/gallery/models/{version}/",
         "/gallery/models/{version}/confusion.png", "/gallery/models/{version}/class-maps.png", "/gallery/export.zip"]
APIS = ["/api/gallery/faces/", "/api/gallery/faces/{face}", "/api/gallery/models/{version}/evaluation",
        "/api/gallery/compare?a={version}&b={version}"]


def _urls(data, templates):
    return [t.format(face=data.faces[0].pk, version=data.version.pk) for t in templates]


def test_anonymous_pages_redirect_to_login_and_api_refuses(client, gallery_data):
    for url in _urls(gallery_data, PAGES):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], url
    for url in _urls(gallery_data, APIS):
        assert client.get(url).status_code in (401, 403), url
    assert client.post(f"/api/gallery/faces/{gallery_data.faces[0].pk}/explanations", {}).status_code in (401, 403)


def test_reviewers_get_403(client, reviewer, gallery_data):
    client.force_login(reviewer)
    for url in _urls(gallery_data, PAGES) + _urls(gallery_data, APIS):
        assert client.get(url).status_code == 403, url
    assert client.post(f"/api/gallery/faces/{gallery_data.faces[0].pk}/explanations", {}).status_code == 403
    assert 'id="link-gallery"' not in client.get("/").content.decode()


@pytest.mark.parametrize("role", ["researcher", "admin_user"])
def test_researchers_and_admins_get_everything(client, request, role, gallery_data):
    client.force_login(request.getfixturevalue(role))
    for url in _urls(gallery_data, PAGES) + _urls(gallery_data, APIS):
        assert client.get(url).status_code == 200, url
    assert 'id="link-gallery"' in client.get("/").content.decode()


def test_token_auth_for_api_clients(client, researcher, gallery_data):
    from apps.accounts.services import api_token_create

    response = client.get("/api/gallery/faces/", HTTP_AUTHORIZATION=f"Token {api_token_create(user=researcher)[1]}")
    assert response.status_code == 200 and response.json()["count"] == len(gallery_data.visible)
