"""The OpenAPI side of the one error shape: every operation's 4xx answers are declared with ``ErrorSerializer``.

``ErrorAwareAutoSchema`` (``REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]``) adds the answers any operation can give:
400 when it takes a body or query parameters, 413 when it takes a body, 401 and 403 when it needs a login or a role,
404 wherever a path id, a page number or an id in the input can name a missing row, 429 when it is throttled; and it
gives the Error body to the 4xx answers that views declare with ``ERROR``.
"""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework.permissions import AllowAny

from .errors import ErrorSerializer

ERROR = OpenApiResponse(ErrorSerializer, description='The one error shape: {"code", "detail", "errors"?}.')

_DESCRIPTIONS = {
    "400": "Invalid input: `errors` names each field that was wrong.",
    "401": "No credentials, or a bad or expired token (`WWW-Authenticate: Token`).",
    "403": "The role does not allow it (or a session request without its CSRF token).",
    "404": "No such row (or one the caller may not see).",
    "413": "The body is over DATA_UPLOAD_MAX_MEMORY_SIZE (apps.core.parsers).",
    "429": "Too many requests: see Retry-After.",
}


class ErrorAwareAutoSchema(AutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code in self._error_codes():
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(ErrorSerializer, description=_DESCRIPTIONS[code]), code, direction=direction)
        for code, response in responses.items():  # a declared 4xx without a body gets the error body
            if code.startswith("4") and not response.get("content"):
                description = response.get("description") or _DESCRIPTIONS.get(code, "Error.")
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(ErrorSerializer, description=description), code, direction=direction)
        return responses

    def _error_codes(self) -> list[str]:
        codes = []
        takes_input = self.method in ("POST", "PUT", "PATCH") or bool(self._get_filter_parameters()) or bool(
            [p for p in self._process_override_parameters(direction="request").values() if p.get("in") == "query"])
        if takes_input:
            codes.append("400")
        if self.method in ("POST", "PUT", "PATCH"):  # any body is bounded in size (apps.core.parsers)
            codes.append("413")
        permissions = getattr(self.view, "permission_classes", [])
        if not all(p is AllowAny for p in permissions) or not permissions:
            codes += ["401", "403"]
        # A path id, a page number past the end, an id in the query or body, or an unknown ``?format=`` (views with
        # several renderers) can each name something that is not there.
        several_formats = len(getattr(self.view, "renderer_classes", [])) > 1
        if "{" in self.path or takes_input or several_formats or self._get_paginator() is not None:
            codes.append("404")
        if getattr(self.view, "throttle_classes", None):
            codes.append("429")
        return codes
