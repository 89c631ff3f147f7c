"""Every response carries the Content-Security-Policy (``apps.core.middleware.ContentSecurityPolicyMiddleware``):
scripts and styles from this site only, no plugins, no framing, no foreign base or form targets. That the pages run
under it with no violation is checked in Chromium (tests/e2e/test_csp.py)."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.helpers import api_client

pytestmark = pytest.mark.django_db

PAGES = ["/", "/status/", "/review/", "/review/reviewers/", "/review/scoring/", "/training/", "/uploads/",
         "/gallery/", "/gallery/compare/", "/accounts/users/", "/api/docs/", "/admin/"]


def directives(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: " ".join(part.split()[1:]) for part in header.split(";") if part.strip()}


def test_the_policy_allows_only_this_site():
    policy = directives(Client().get("/accounts/login/"))
    assert policy["default-src"] == "'self'" and policy["script-src"] == "'self'"
    assert policy["object-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
    assert policy["base-uri"] == "'self'" and policy["form-action"] == "'self'"
    assert "unsafe-inline" not in policy["script-src"] and "unsafe-eval" not in policy["script-src"]
    assert "unsafe-inline" not in policy["style-src"]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_answers_with_the_policy(admin_user, path):
    client = Client()
    client.force_login(admin_user)
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_errors_api_answers_and_the_login_redirect_carry_it_too(reviewer):
    assert "Content-Security-Policy" in Client().get("/")  # the redirect to the login page
    assert "Content-Security-Policy" in Client().get("/no-such-page/")
    assert "Content-Security-Policy" in api_client(reviewer).get("/api/gallery/faces/")  # 403
    assert "Content-Security-Policy" in api_client(reviewer).get("/api/review/stats")
