"""The production set from outside, over the wire: nginx's TLS and redirects, who may claim https, static files from
nginx, media only after Django's access check, the production settings' answers (no debug page, secure cookies, HSTS),
and the state ``make prod`` keeps (secret key, certificate, Redis's append-only file)."""

from __future__ import annotations

import http.client
import socket
import ssl
import stat

import pytest
import requests

from .conftest import TRUSTED_LOAD_BALANCER
from .stack import ADMIN_PASSWORD

pytestmark = [pytest.mark.deploy]


def raw_get(host: str, port: int, path: str, *, headers: dict[str, str] | None = None, tls: bool = False,
            source: str | None = None) -> http.client.HTTPResponse:
    """One request sent as written (no dot-segment clean-up, no redirects), optionally from another source address."""
    address = (source, 0) if source else None
    if tls:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(host, port, context=context, timeout=30,
                                                                             source_address=address)
    else:
        connection = http.client.HTTPConnection(host, port, timeout=30, source_address=address)
    connection.request("GET", path, headers=headers or {})
    response = connection.getresponse()
    response.body = response.read()  # type: ignore[attr-defined]
    connection.close()
    return response


def test_plain_http_is_redirected_to_https_with_the_port(prod_stack):
    response = raw_get("localhost", prod_stack.http_port, "/review/?a=1", headers={"Host": "localhost"})
    assert response.status == 301
    assert response.getheader("Location") == f"https://localhost:{prod_stack.https_port}/review/?a=1"


def test_a_client_cannot_claim_https_on_plain_http(prod_stack):
    """X-Forwarded-Proto from anyone but the trusted load balancer is ignored: still a redirect, never served."""
    response = raw_get("127.0.0.1", prod_stack.http_port, "/accounts/login/",
                       headers={"X-Forwarded-Proto": "https"})
    assert response.status == 301


def test_behind_a_trusted_tls_load_balancer_there_is_no_redirect_loop(prod_stack):
    """The load balancer ends TLS and talks plain HTTP to nginx with X-Forwarded-Proto: https. Before, nginx passed
    its own scheme on and Django redirected to https forever; now the page is served, as https (secure cookie)."""
    response = raw_get("127.0.0.1", prod_stack.http_port, "/accounts/login/", source=TRUSTED_LOAD_BALANCER,
                       headers={"X-Forwarded-Proto": "https", "Host": "localhost"})
    assert response.status == 200
    assert "Secure" in response.getheader("Set-Cookie", "")
    plain = raw_get("127.0.0.1", prod_stack.http_port, "/accounts/login/", source=TRUSTED_LOAD_BALANCER,
                    headers={"X-Forwarded-Proto": "http"})
    assert plain.status == 301


def test_https_answers_with_production_headers(prod_stack):
    response = requests.get(f"{prod_stack.url}/accounts/login/", verify=False, timeout=30)
    assert response.status_code == 200
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "Secure" in response.headers["Set-Cookie"]
    assert response.headers["Server"] == "nginx"  # no version: server_tokens off


def test_tls_is_the_self_signed_certificate_made_at_first_start(prod_stack):
    cert_file = prod_stack.state / "tls" / "cert.pem"
    key_file = prod_stack.state / "tls" / "key.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    context = ssl.create_default_context(cafile=str(cert_file))  # the certificate is its own authority
    with socket.create_connection(("127.0.0.1", prod_stack.https_port), timeout=10) as sock:
        with context.wrap_socket(sock, server_hostname="localhost") as tls:
            assert tls.version() in {"TLSv1.2", "TLSv1.3"}
            names = [value for _, value in tls.getpeercert()["subjectAltName"]]
    assert names == ["localhost", "127.0.0.1"]


def test_no_debug_page_and_no_files_outside_media(prod_stack):
    for path in ("/media/../ferplatform/settings/base.py", "/media/%2e%2e/ferplatform/settings/base.py",
                 "/internal-media/faces/", "/no-such-page/"):
        response = raw_get("127.0.0.1", prod_stack.https_port, path, tls=True)
        assert response.status in {400, 404}, path
        assert b"DEBUG" not in response.body and b"SECRET_KEY" not in response.body, path


def test_static_files_come_from_nginx(prod_stack):
    manifest = prod_stack.state / "static" / "staticfiles.json"
    assert manifest.exists()  # collectstatic ran with the production storage
    response = requests.get(f"{prod_stack.url}/static/review/scoring.js", verify=False, timeout=30)
    assert response.status_code == 200
    assert "public, immutable" in response.headers["Cache-Control"]


def test_media_needs_a_session_and_then_comes_from_nginx(prod_stack):
    """A face's PNG: 404 without a session (its existence is not revealed), the PNG with one, handed over by Django
    to nginx's internal location (no X-Accel-Redirect header reaches the client)."""
    name = prod_stack.wait_for("a stored face", "SELECT png FROM faces_facepixels ORDER BY png LIMIT 1")[0][0]
    url = f"{prod_stack.url}/media/{name}"
    assert requests.get(url, verify=False, timeout=30).status_code == 404
    admin = prod_stack.session("admin", ADMIN_PASSWORD)
    response = admin.get(url, timeout=30)
    assert response.status_code == 200 and response.content.startswith(b"\x89PNG")
    assert response.headers["Content-Type"] == "image/png"
    assert "X-Accel-Redirect" not in response.headers
    assert response.headers["Cache-Control"] == "private, max-age=300"


def test_state_is_kept_where_make_prod_says(prod_stack):
    secret = prod_stack.state / "secret_key"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600 and len(secret.read_text().strip()) >= 50
    assert list((prod_stack.state / "redis").glob("appendonly*")), "Redis runs with its append-only file"
    assert (prod_stack.state / "logs" / "nginx-access.log").exists()
