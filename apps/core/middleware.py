"""Pages render an ``ApplicationError`` the way the API does: with its status and its message, never a 500.

DRF views handle their own exceptions (``apps.core.errors.api_exception_handler``) before this is reached; this is
for server-rendered pages and downloads that call the same services and parameter parsers.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from .errors import ApplicationError


class ApplicationErrorMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, ApplicationError):
            return None
        return render(request, "error.html", {"error": exception}, status=exception.status)
