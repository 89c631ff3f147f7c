"""X-Forwarded-* count only from the reverse proxy (``TRUSTED_PROXIES``): anyone else who reaches gunicorn cannot
claim https or another client address (``apps.core.middleware.TrustedProxyMiddleware``)."""

from __future__ import annotations

import ipaddress

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from ferplatform.settings import env

OUTSIDER = "203.0.113.7"


@pytest.fixture
def production_tls(settings):
    """What production.py sets about TLS."""
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    settings.TRUSTED_PROXIES = (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("10.1.2.0/24"))


@pytest.mark.django_db
@pytest.mark.parametrize(("remote", "forwarded", "redirected"), [
    ("127.0.0.1", "https", False),  # nginx on this machine says https: served
    ("10.1.2.9", "https", False),  # nginx on the compose network
    ("127.0.0.1", "http", True),  # nginx says plain http: redirected
    (OUTSIDER, "https", True),  # someone else says https: not believed
    (OUTSIDER, None, True),
])
def test_https_is_taken_only_from_the_proxy(production_tls, remote, forwarded, redirected):
    headers = {"HTTP_X_FORWARDED_PROTO": forwarded} if forwarded else {}
    response = Client(REMOTE_ADDR=remote).get("/accounts/login/", **headers)
    if redirected:
        assert response.status_code == 301 and response["Location"].startswith("https://")
    else:
        assert response.status_code == 200


@pytest.mark.django_db
def test_forwarded_for_is_dropped_from_others(settings):
    """The login lockouts read the client address from X-Forwarded-For (nginx appends it): from an outsider the
    header is gone and REMOTE_ADDR counts."""
    from django.http import HttpRequest

    from apps.core.middleware import TrustedProxyMiddleware

    seen: dict[str, str | None] = {}

    def view(request: HttpRequest):
        seen["for"] = request.META.get("HTTP_X_FORWARDED_FOR")
        seen["proto"] = request.META.get("HTTP_X_FORWARDED_PROTO")

    middleware = TrustedProxyMiddleware(view)
    for remote, expected in ((OUTSIDER, None), ("127.0.0.1", "198.51.100.1")):
        request = HttpRequest()
        request.META.update(REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR="198.51.100.1", HTTP_X_FORWARDED_PROTO="https")
        middleware(request)
        assert seen == {"for": expected, "proto": expected and "https"}


def test_trusted_proxies_parse_and_refuse_wildcards(monkeypatch):
    monkeypatch.setenv("X_PROXIES", "127.0.0.1, 172.30.0.0/24,::1")
    assert [str(n) for n in env.env_networks("X_PROXIES", [])] == ["127.0.0.1/32", "172.30.0.0/24", "::1/128"]
    monkeypatch.setenv("X_PROXIES", "*")
    with pytest.raises(ImproperlyConfigured, match="X_PROXIES"):
        env.env_networks("X_PROXIES", [])
