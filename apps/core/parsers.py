"""The API's JSON parser (``REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]``): bounded in size and nesting before decoding.

A body of 100,000 ``[`` raised ``RecursionError`` inside DRF's decoder: a 500 for anyone. Here a body nested
deeper than ``MAX_JSON_DEPTH`` is a 400 before any decoding, and one over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` a 413
(DRF 3.18 hands JSON over through ``request.body``, whose own check ``apps.core.errors`` turns into the same 413; the
parser checks again so that a stream handed over directly is bounded too), both in the one error shape. No request
the API accepts comes near either limit.
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.utils import json

# Arrays and objects inside each other; the deepest body the API reads (a training recipe) has 3.
MAX_JSON_DEPTH = 64

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)  # brackets inside strings do not nest anything
_BRACKET = re.compile(rb"[\[\]{}]")


class RequestTooLarge(ParseError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"


def json_nesting_exceeds(data: bytes, limit: int) -> bool:
    """Whether arrays and objects in ``data`` nest deeper than ``limit`` (a scan of the bytes, not a decode)."""
    depth = 0
    for bracket in _BRACKET.finditer(_STRING.sub(b"", data)):
        if bracket.group() in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _declared_length(parser_context: dict[str, Any]) -> int | None:
    request = parser_context.get("request")
    meta = getattr(request, "META", None) or {}
    try:
        return int(meta.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        parser_context = parser_context or {}
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None:
            declared = _declared_length(parser_context)
            if declared is not None and declared > limit:
                raise RequestTooLarge(f"a JSON body may have at most {limit} bytes; this one has {declared}")
            data = stream.read(limit + 1) if stream is not None else b""
            if len(data) > limit:
                raise RequestTooLarge(f"a JSON body may have at most {limit} bytes")
        else:
            data = stream.read() if stream is not None else b""
        if json_nesting_exceeds(data, MAX_JSON_DEPTH):
            raise ParseError(f"JSON parse error - arrays and objects nested deeper than {MAX_JSON_DEPTH} levels")
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            return json.loads(data.decode(encoding), parse_constant=json.strict_constant if self.strict else None)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            raise ParseError(f"JSON parse error - {exc}") from None
