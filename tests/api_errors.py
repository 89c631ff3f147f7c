"""Reading the API's one error shape in tests: ``{"code", "detail", "errors"?: [{"field", "code", "detail"}]}``."""

from __future__ import annotations


def error_body(response) -> dict:
    """The error body of ``response``, checked to have the one shape (and nothing else)."""
    assert 400 <= response.status_code < 500 or response.status_code == 503, response.status_code
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) <= {"code", "detail", "errors"} and {"code", "detail"} <= set(body), body
    assert isinstance(body["code"], str) and body["code"] and isinstance(body["detail"], str) and body["detail"]
    for entry in body.get("errors", []):
        assert {"field", "code", "detail"} <= set(entry), entry
    return body


def field_errors(response) -> dict[str, list[str]]:
    """``{field: [messages]}`` of an error response (the request-level messages under ``""``)."""
    errors: dict[str, list[str]] = {}
    for entry in error_body(response).get("errors", []):
        errors.setdefault(entry["field"], []).append(entry["detail"])
    return errors
