"""The API's one error shape.

Services raise an ``ApplicationError`` (or one of the subclasses below, or their own subclass of one): it carries
the HTTP status, a stable machine-readable ``code``, a human ``detail`` and, optionally, ``errors``, one entry per
field or file that was wrong. ``api_exception_handler`` (``REST_FRAMEWORK["EXCEPTION_HANDLER"]``) renders it, and
every 4xx that DRF raises itself (validation, authentication, permission, not found, throttling, parsing), as::

    {"code": "not_found", "detail": "no review item 12", "errors": [{"field": "choice", "code": "...", ...}]}

Views never build error responses by hand. Anything else that escapes a view is a bug and stays a 500, with one
exception: a database that does not answer (down, restarting, refusing connections) is the platform's state, not a bug,
and answers ``503 {"code": "database_unavailable", ...}`` with ``Retry-After`` (``database_unavailable``), here for the
API and in ``apps.core.middleware`` for pages.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .parsers import RequestTooLarge

logger = logging.getLogger(__name__)


class ApplicationError(Exception):
    """A request the application refuses, with the status and code a client can act on."""

    status: int = status.HTTP_400_BAD_REQUEST
    code: str = "invalid"

    def __init__(self, detail: str, *, code: str | None = None, status: int | None = None,
                 errors: Sequence[Mapping[str, object]] | None = None) -> None:
        super().__init__(detail)
        self.detail = str(detail)
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.errors = [dict(e) for e in errors] if errors else []

    def as_body(self) -> dict[str, object]:
        return error_body(code=self.code, detail=self.detail, errors=self.errors)


class InvalidInput(ApplicationError):
    status, code = status.HTTP_400_BAD_REQUEST, "invalid"


class NotFound(ApplicationError):
    status, code = status.HTTP_404_NOT_FOUND, "not_found"


class Conflict(ApplicationError):
    status, code = status.HTTP_409_CONFLICT, "conflict"


class Unavailable(ApplicationError):
    """The platform cannot do this right now (no active model version, a worker not ready)."""

    status, code = status.HTTP_503_SERVICE_UNAVAILABLE, "unavailable"
    retry_after: int | None = None  # seconds, sent as Retry-After when set


class DatabaseUnavailable(Unavailable):
    """The database does not answer: every request that needs it gets this until it is back."""

    code = "database_unavailable"
    retry_after = 5


# PostgreSQL SQLSTATEs that mean "no usable connection": class 08 (connection exception), the server shutting down
# (admin or crash) or still starting up, and too many connections. Anything else (a deadlock, a timeout of one
# statement, a missing table) is about the query, not the database being away, and stays a 500.
_UNAVAILABLE_SQLSTATE_PREFIXES = ("08", "57P01", "57P02", "57P03", "53300")
_NO_SQLSTATE = object()


def database_unavailable(exc: BaseException) -> DatabaseUnavailable | None:
    """The 503 that ``exc`` stands for when it is a failed connection to the database, else None.

    Django's ``OperationalError`` / ``InterfaceError`` wrap the driver's error (``__cause__``). psycopg's errors
    carry a ``sqlstate``: None for client-side failures (connection refused, timed out, closed by the server),
    else the server's code. Drivers without one (SQLite, local runs only) are not mapped: their errors stay 500s.
    """
    if isinstance(exc, InterfaceError):  # Django raises it for a connection that is already closed
        return DatabaseUnavailable("the database is not answering; try again shortly")
    if not isinstance(exc, OperationalError):
        return None
    sqlstate = getattr(exc.__cause__, "sqlstate", _NO_SQLSTATE)
    if sqlstate is _NO_SQLSTATE:
        return None
    if sqlstate is not None and not str(sqlstate).startswith(_UNAVAILABLE_SQLSTATE_PREFIXES):
        return None
    return DatabaseUnavailable("the database is not answering; try again shortly")


def database_unavailable_log(where: str, exc: BaseException) -> None:
    """One warning line per refused request (not a traceback: the outage is not a bug of that request)."""
    logger.warning("database unavailable, %s answers 503: %s: %s", where, type(exc).__name__,
                   " ".join(str(exc).split()))


def error_response(exc: ApplicationError) -> Response:
    """The API's answer for an application error (its body, status and, for a 503 that knows, Retry-After)."""
    response = Response(exc.as_body(), status=exc.status)
    if getattr(exc, "retry_after", None):
        response["Retry-After"] = str(exc.retry_after)
    return response


def error_body(*, code: str, detail: str, errors: Sequence[Mapping[str, object]] | None = None) -> dict[str, object]:
    body: dict[str, object] = {"code": code, "detail": detail}
    if errors:
        body["errors"] = [dict(e) for e in errors]
    return body


def _flatten(data: object, codes: object, field: str = "") -> list[dict[str, object]]:
    """DRF's nested validation errors as a flat list of ``{"field", "code", "detail"}`` (``a.0.b`` for nesting)."""
    if isinstance(data, Mapping):
        out = []
        for key, value in data.items():
            name = "" if key in ("non_field_errors", "detail") and not field else f"{field}.{key}" if field else key
            out += _flatten(value, codes.get(key) if isinstance(codes, Mapping) else codes, name)
        return out
    if isinstance(data, (list, tuple)):
        out = []
        code_list = codes if isinstance(codes, (list, tuple)) else [codes] * len(data)
        for i, (value, code) in enumerate(zip(data, code_list, strict=False)):
            nested = isinstance(value, (Mapping, list, tuple))
            out += _flatten(value, code, f"{field}.{i}" if nested and field else str(i) if nested else field)
        return out
    return [{"field": field, "code": str(codes or "invalid"), "detail": str(data)}]


def _summary(errors: list[dict[str, object]]) -> str:
    parts = [f"{e['field']}: {e['detail']}" if e["field"] else str(e["detail"]) for e in errors]
    return "; ".join(parts) or "invalid input"


def _drf_body(exc: drf_exceptions.APIException) -> dict[str, object]:
    if isinstance(exc, drf_exceptions.ValidationError):
        errors = _flatten(exc.detail, exc.get_codes())
        return error_body(code="invalid", detail=_summary(errors), errors=errors)
    detail = exc.detail
    if isinstance(detail, (Mapping, list)):  # an APIException raised with a dict or list: keep every message
        errors = _flatten(detail, exc.get_codes())
        return error_body(code=exc.default_code, detail=_summary(errors), errors=errors)
    code = getattr(detail, "code", None) or exc.default_code
    return error_body(code=str(code), detail=str(detail))


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's ``EXCEPTION_HANDLER``: every application error, every DRF 4xx and a database that is down (503) in the
    one shape."""
    if isinstance(exc, ApplicationError):
        return error_response(exc)
    unavailable = database_unavailable(exc)
    if unavailable is not None:
        request = context.get("request")
        database_unavailable_log(request.path if request is not None else "the API", exc)
        return error_response(unavailable)
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound(str(exc) or "not found")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf_exceptions.PermissionDenied(str(exc) or None)
    elif isinstance(exc, RequestDataTooBig):  # DRF reads request.body, which checks DATA_UPLOAD_MAX_MEMORY_SIZE
        exc = RequestTooLarge(f"the body may have at most {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes")
    response = drf_exception_handler(exc, context)  # keeps WWW-Authenticate, Retry-After and Allow headers
    if response is not None and isinstance(exc, drf_exceptions.APIException):
        response.data = _drf_body(exc)
    return response


class ErrorItemSerializer(serializers.Serializer):
    field = serializers.CharField(help_text="The field (or file index) at fault; empty for the request as a whole.")
    code = serializers.CharField()
    detail = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    """The body of every 4xx answer (documented once; every operation's 4xx responses refer to it)."""

    code = serializers.CharField(help_text="Stable, machine-readable: not_found, conflict, invalid, ...")
    detail = serializers.CharField(help_text="What went wrong, for people.")
    errors = ErrorItemSerializer(many=True, required=False, help_text="One entry per field or file that was wrong.")
