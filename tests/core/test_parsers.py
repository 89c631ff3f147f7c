"""JSON bodies of any shape get a 4xx in the one error shape, never a 500: too deep (RecursionError in the decoder, or
later in code that walks the data) and too large (parsed whole otherwise) are refused before the body is decoded."""

from __future__ import annotations

import io
import json

import pytest
from django.test import Client
from django.urls import URLResolver, get_resolver, reverse
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from apps.core.parsers import MAX_JSON_DEPTH, BoundedJSONParser
from tests.api_errors import error_body

pytestmark = pytest.mark.django_db


def post_raw(path: str, body: bytes):
    """A raw JSON body from a client that is not DRF's test client (so nothing re-encodes it)."""
    return Client().post(path, data=body, content_type="application/json")


def test_a_deeply_nested_body_is_a_400_not_a_500():
    answer = post_raw(reverse("api-token"), b"[" * 100_000)
    assert answer.status_code == 400
    body = error_body(answer)
    assert body["code"] == "parse_error" and "nested" in body["detail"]


@pytest.mark.parametrize("body", [b'{"a":' * 5000 + b"1" + b"}" * 5000, b"[" * (MAX_JSON_DEPTH + 1) + b"]" *
                                  (MAX_JSON_DEPTH + 1)])
def test_nesting_past_the_limit_is_refused_even_when_well_formed(body):
    answer = post_raw(reverse("api-token"), body)
    assert answer.status_code == 400 and error_body(answer)["code"] == "parse_error"


def test_brackets_inside_strings_do_not_count():
    body = json.dumps({"username": "[" * 10_000 + "{" * 10_000, "password": "x"}).encode()
    answer = post_raw(reverse("api-token"), body)
    assert answer.status_code == 400 and error_body(answer)["code"] == "invalid_credentials"


def test_an_oversized_body_is_a_413_before_it_is_read(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"username": "x" * 2000, "password": "y"}).encode()
    answer = post_raw(reverse("api-token"), body)
    assert answer.status_code == 413
    assert error_body(answer)["code"] == "request_too_large"


def test_a_body_that_claims_less_than_it_sends_is_still_bounded(settings):
    """The parser reads at most the limit plus one byte, whatever Content-Length said."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    parser = BoundedJSONParser()
    with pytest.raises(ParseError) as refused:
        parser.parse(io.BytesIO(b'["' + b"x" * 10_000 + b'"]'), parser_context={"request": None})
    assert refused.value.status_code == 413


def test_the_parser_still_reads_ordinary_json():
    assert BoundedJSONParser().parse(io.BytesIO(b'{"a": [1, {"b": "[{"}]}'), parser_context={}) == \
        {"a": [1, {"b": "[{"}]}


def _views(patterns):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _views(pattern.url_patterns)
        else:
            cls = getattr(pattern.callback, "cls", None)
            if cls is not None:
                yield cls


def test_every_api_view_parses_json_with_the_bounded_parser():
    """A view that names its own parsers (the upload page's heatmap endpoint) must not bring DRF's plain one back."""
    views = list(_views(get_resolver().url_patterns))
    assert len(views) > 20
    plain = sorted({view.__name__ for view in views for parser in view.parser_classes
                    if issubclass(parser, JSONParser) and not issubclass(parser, BoundedJSONParser)})
    assert plain == []
