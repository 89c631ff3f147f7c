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
            response = render(request, "error.html", {"error": exception}, status=exception.status)
            if getattr(exception, "retry_after", None):
                response["Retry-After"] = str(exception.retry_after)
            return response
        unavailable = database_unavailable(exception)
        if unavailable is not None:
            database_unavailable_log(request.path, exception)
            return unavailable_response(request, unavailable)
        return None


FORWARDED_HEADERS = ("HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PORT")


def _address(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None


def client_address(request: HttpRequest) -> str | None:
    """The client's address as the proxy saw it: what failed logins are counted against (``AXES_CLIENT_IP_CALLABLE``).

    From a trusted proxy, the entry of ``X-Forwarded-For`` that nginx appended (the last) or, with
    ``LOGIN_PROXY_COUNT`` proxies in front of nginx that append too, the one that many entries further left. Whatever
    a client wrote to the left of those is never read, so a forged chain counts against its sender, not against nginx
    (and everyone behind it). From anyone else the header is gone (``TrustedProxyMiddleware``): the connection's
    address."""
    remote = request.META.get("REMOTE_ADDR", "")
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if not forwarded or not from_trusted_proxy(remote):
        return _address(remote) or remote or None
    entries = [entry for entry in forwarded.split(",") if entry.strip()]
    # The client's position, or the first valid address right of it (written by a proxy, not by the client).
    for entry in entries[max(0, len(entries) - 1 - settings.LOGIN_PROXY_COUNT):]:
        if (address := _address(entry)) is not None:
            return address
    return _address(remote) or remote or None


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


class ContentSecurityPolicyMiddleware:
    """Every response carries ``CONTENT_SECURITY_POLICY``: the pages load scripts and styles from this site only
    (their data travels in ``<script type="application/json">`` blocks and ``data-`` attributes, which run nothing),
    so an injected ``<script>`` or event handler does not run. A view that sets its own header keeps it."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        return response


class WaitSlotMiddleware:
    """Gives back the waiting-request slot a request took (``apps.core.throttles.WaitSlotThrottle``) once its response
    is made, whatever happened in the view."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from .throttles import wait_slot_release

        try:
            return self.get_response(request)
        finally:
            wait_slot_release(request)
