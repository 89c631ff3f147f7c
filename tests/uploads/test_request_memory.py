"""A request's memory is bounded as a whole: its total pixels are capped from the headers, before any decode, and the
files are decoded one at a time, each released before the next (``benchmarks/bench_upload_memory.py`` measures it)."""

from __future__ import annotations

import weakref

import pytest

import apps.uploads.services as services
from apps.faces.models import FaceImage, FacePixels
from apps.uploads.models import Upload
from tests.api_errors import error_body

from . import samples
from .conftest import media_files

pytestmark = pytest.mark.django_db

URL = "/api/uploads/"


def post(client, *files, no_face="use_whole"):
    return client.post(f"{URL}?no_face={no_face}&methods=", {"images": list(files)}, format="multipart")


def pngs(count: int, width: int = 64, height: int = 48) -> list:
    return [samples.upload_file(samples.png(width, height), f"p{i}.png", "image/png") for i in range(count)]


def test_over_the_request_pixel_budget_is_a_413_before_anything_is_decoded(client, media_root, settings,
                                                                            monkeypatch):
    settings.UPLOADS_MAX_REQUEST_PIXELS = 9_000  # three 64x48 files are 9,216 pixels

    def no_decode(*args, **kwargs):
        raise AssertionError("a file was decoded although the headers already exceed the request budget")

    monkeypatch.setattr(services, "image_decode", no_decode)
    response = post(client, *pngs(3))
    assert response.status_code == 413, response.content
    body = error_body(response)
    assert body["code"] == "request_too_large"
    assert "9,216 pixels" in body["detail"] and "9,000" in body["detail"]
    assert "errors" not in body
    assert Upload.objects.count() == FaceImage.objects.count() == FacePixels.objects.count() == 0
    assert media_files(media_root) == []


def test_a_request_exactly_at_the_budget_is_accepted(client, settings):
    settings.UPLOADS_MAX_REQUEST_PIXELS = 3 * 64 * 48
    response = post(client, *pngs(3))
    assert response.status_code == 201, response.content
    assert Upload.objects.count() == 3


def test_refused_files_do_not_count_towards_the_budget_and_are_still_named(client, settings):
    settings.UPLOADS_MAX_REQUEST_PIXELS = 64 * 48
    response = post(client, samples.upload_file(b"", "empty.png", "image/png"), *pngs(1))
    assert response.status_code == 400
    assert [(e["index"], e["code"]) for e in error_body(response)["errors"]] == [(0, "empty_file")]


def test_the_default_budget_admits_several_files_at_the_per_file_limit(settings):
    assert services.max_request_pixels() == 200_000_000  # the settings default
    assert services.max_request_pixels() >= 5 * settings.UPLOADS_MAX_PIXELS


def test_files_are_decoded_one_at_a_time(client, monkeypatch):
    """Only the crop and the small facts of a checked file outlive its check: when the next file is decoded, no
    earlier decoded image exists any more (no gc.collect: released by reference counting or closed)."""
    real_decode = services.image_decode
    decoded: list[weakref.ref] = []
    alive_at_each_decode: list[int] = []

    def still_holding(ref: weakref.ref) -> bool:
        image = ref()
        return image is not None and not _closed(image)

    def counting_decode(data, **kwargs):
        alive_at_each_decode.append(sum(still_holding(ref) for ref in decoded))
        result = real_decode(data, **kwargs)
        decoded.append(weakref.ref(result.image))
        return result

    monkeypatch.setattr(services, "image_decode", counting_decode)
    response = post(client, *pngs(4, 320, 240))
    assert response.status_code == 201, response.content
    assert alive_at_each_decode == [0, 0, 0, 0]
    assert not any(still_holding(ref) for ref in decoded)  # nor after the request
    uploads = response.json()["uploads"]
    assert [u["width"] for u in uploads] == [320] * 4 and all(u["face_id"] for u in uploads)


def _closed(image) -> bool:
    try:
        image.getpixel((0, 0))
    except ValueError:  # "Operation on closed image": its pixels are freed
        return True
    return False


def test_decoding_errors_of_the_second_pass_and_header_errors_of_the_first_are_listed_in_file_order(client):
    truncated = samples.upload_file(samples.png(320, 240)[:300], "cut.png", "image/png")  # header fine, data short
    empty = samples.upload_file(b"", "empty.png", "image/png")  # refused from its size alone
    response = post(client, truncated, empty, *pngs(1))
    assert response.status_code == 400
    body = error_body(response)
    assert body["code"] == "invalid_files" and "2 of 3 files" in body["detail"]
    assert [(e["index"], e["code"]) for e in body["errors"]] == [(0, "truncated"), (1, "empty_file")]
    assert Upload.objects.count() == 0
