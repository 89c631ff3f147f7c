"""Pages render an ``ApplicationError`` the way the API does: with its status and its message, never a 500.

DRF views handle their own exceptions (``apps.core.errors.api_exception_handler``) before this is reached; this is
for server-rendered pages and downloads that call the same services and parameter parsers.

A database that does not answer is a 503 here too (``apps.core.errors.database_unavailable``), rendered without the
request's context: the context processors and ``base.html`` read the session, the user and the messages, each a query
that would fail again. So that page is ``error.html`` with a plain context (no user, no traceback, DEBUG or not), and
a non-DRF view under ``/api/`` answers the API's JSON body.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string

from .errors import ApplicationError, Unavailable, database_unavailable, database_unavailable_log


def unavailable_response(request: HttpRequest, error: Unavailable) -> HttpResponse:
    """The 503 of a page (or a plain Django view under ``/api/``) that needs a database which is away; touches
    nothing that needs the database."""
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse(error.as_body(), status=error.status)
    else:
        response = HttpResponse(render_to_string("error.html", {"error": error}), status=error.status)
    if error.retry_after:
        response["Retry-After"] = str(error.retry_after)
    response["Cache-Control"] = "no-store"
    return response


class ApplicationErrorMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, ApplicationError):
            return render(request, "error.html", {"error": exception}, status=exception.status)
        unavailable = database_unavailable(exception)
        if unavailable is not None:
            database_unavailable_log(request.path, exception)
            return unavailable_response(request, unavailable)
        return None


FORWARDED_HEADERS = ("HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PORT")


def from_trusted_proxy(remote_addr: str) -> bool:
    try:
        address = ipaddress.ip_address(remote_addr)
    except ValueError:  # empty (a unix socket) or garbage: not the proxy
        return False
    return any(address in network for network in settings.TRUSTED_PROXIES)


class TrustedProxyMiddleware:
    """``X-Forwarded-*`` count only when the request comes from the reverse proxy (``TRUSTED_PROXIES``).

    nginx overwrites these headers on every request it passes on, so what it sends can be trusted; a client that
    reaches gunicorn some other way could otherwise claim https (``SECURE_PROXY_SSL_HEADER``: secure cookies and
    no redirect on plain http) or any address (the login lockouts' client address)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not from_trusted_proxy(request.META.get("REMOTE_ADDR", "")):
            for header in FORWARDED_HEADERS:
                request.META.pop(header, None)
        return self.get_response(request)
