"""Every page runs in Chromium under the Content-Security-Policy with no violation: no inline script, no inline
style block, no foreign resource (the policy itself: tests/core/test_csp.py)."""

from __future__ import annotations

import pytest

from tests.accounts.factories import PASSWORD
from tests.gallery import conftest as gallery_fixtures

gallery_data = gallery_fixtures.gallery_data  # faces with predictions and heatmaps: the gallery's bars and colours

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Each violation is recorded by the page itself (the event fires before any console message).
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation",
  e => window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:` +
                         `${e.lineNumber}`));
"""


def test_no_page_violates_the_policy(live_server, page, admin_user, gallery_data):
    page.add_init_script(RECORD_VIOLATIONS)
    console = []
    page.on("console", lambda message: console.append(message.text))
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", admin_user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")

    version, face = gallery_data.version.pk, gallery_data.settled.pk
    paths = ["/", "/status/", "/review/", "/review/grid/", "/review/reviewers/", "/review/scoring/", "/training/",
             "/uploads/", "/datamap/",
             "/gallery/", f"/gallery/faces/{face}/", f"/gallery/models/{version}/",
             f"/gallery/compare/?a={version}&b={version}", "/accounts/users/", "/api/docs/", "/admin/"]
    violations = {}
    for path in paths:
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 200, path
        assert "script-src 'self'" in response.headers["content-security-policy"], path
        page.wait_for_load_state("networkidle")
        if path == "/api/docs/":  # Swagger UI set itself up from its script URL
            page.wait_for_selector("#swagger-ui .information-container")
        found = page.evaluate("window.__csp")
        if found:
            violations[path] = found
    assert violations == {}
    assert not [text for text in console if "Content Security Policy" in text], console
