"""The helpers base.html gives every page (static/js/api.js, static/js/dom.js), in a real Chromium on the login page:
the JSON helper's answers (204, JSON, other bodies, the API's one error shape, a proxy's HTML error), its CSRF header
from the cookie, ``urlFor`` with the sentinel id, and ``el`` putting data in as text."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from django.urls import reverse

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

REFUSED = {"code": "conflict", "detail": "You already voted on this item.",
           "errors": [{"field": "choice", "code": "invalid", "detail": "not a choice"}]}
ANSWERS = {
    "/probe/no-content": {"status": 204, "body": ""},
    "/probe/json": {"status": 200, "content_type": "application/json", "body": '{"a": 1}'},
    "/probe/text": {"status": 200, "content_type": "text/csv", "body": "a,b\n1,2\n"},
    "/probe/refused": {"status": 409, "content_type": "application/json", "body": json.dumps(REFUSED)},
    "/probe/proxy": {"status": 502, "content_type": "text/html", "body": "<html><h1>Bad gateway</h1></html>"},
}

CALL_ALL = """async () => {
  const {api} = window.ferplatform, out = {};
  for (const name of ["no-content", "json", "text"]) out[name] = await api(`/probe/${name}`);
  for (const name of ["refused", "proxy"]) {
    try { await api(`/probe/${name}`, {method: "POST", json: {choice: 3}}); out[name] = "no error"; }
    catch (e) { out[name] = {message: e.message, status: e.status, code: e.code, errors: e.errors, data: e.data}; }
  }
  return out;
}"""


def test_the_json_helper(live_server, page):
    requests = {}

    def handle(route):
        path = urlsplit(route.request.url).path
        requests[path] = route.request
        route.fulfill(**ANSWERS[path])

    page.route(lambda url: urlsplit(url).path.startswith("/probe/"), handle)
    page.goto(live_server.url + reverse("login"))
    out = page.evaluate(CALL_ALL)

    assert out["no-content"] is None
    assert out["json"] == {"a": 1}
    assert out["text"] == "a,b\n1,2\n"
    assert out["refused"] == {"message": REFUSED["detail"], "status": 409, "code": "conflict",
                              "errors": REFUSED["errors"], "data": REFUSED}
    assert out["proxy"]["message"] == "502 Bad Gateway" and out["proxy"]["status"] == 502
    assert out["proxy"]["code"] == "" and out["proxy"]["errors"] == []

    sent = requests["/probe/refused"]
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    assert sent.headers["x-csrftoken"] == csrf
    assert sent.headers["content-type"] == "application/json" and json.loads(sent.post_data) == {"choice": 3}
    assert "x-csrftoken" not in requests["/probe/json"].headers  # GET: no token needed


def test_url_for_and_el(live_server, page):
    page.goto(live_server.url + reverse("login"))
    template = reverse("review-api-vote", args=[999999999])
    assert page.evaluate("t => ferplatform.urlFor(t, 42)", template) == reverse("review-api-vote", args=[42])
    template = reverse("api-upload-detail", args=["999999999"])
    assert page.evaluate("t => ferplatform.urlFor(t, 'a b')", template) == reverse("api-upload-detail", args=["a b"])
    error = page.evaluate("t => { try { ferplatform.urlFor(t, 1); } catch (e) { return e.message; } }",
                          reverse("review-api-next"))
    assert error.startswith("not a URL template")

    built = page.evaluate("""() => {
      const node = ferplatform.el("p", {class: "x", text: "<b>data</b>", "data-id": 3, hidden: false,
                                        style: {width: "40%"}}, [ferplatform.el("span", {text: "!"}), " & more", null]);
      return [node.outerHTML, node.textContent];
    }""")
    html, text = built
    assert html == '<p class="x" data-id="3" style="width: 40%;">&lt;b&gt;data&lt;/b&gt;<span>!</span> &amp; more</p>'
    assert text == "<b>data</b>! & more"
