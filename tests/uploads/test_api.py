"""Accepted uploads: unusual formats, the no-face policy, batches, ownership, listing and throttling."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.test import override_settings
from PIL import Image

from apps.faces.models import FaceImage, Split
from apps.uploads.models import UPLOADS_DATASET, Upload
from tests.accounts.factories import UserFactory

from . import samples

pytestmark = pytest.mark.django_db

URL = "/api/uploads/"


@pytest.fixture
def enqueued(monkeypatch):
    """What the upload service queued for prediction (called for real: the chunk rows are created and sent on commit,
    and each chunk then records its uploads' state)."""
    import apps.uploads.services as services

    calls: list[dict] = []
    real = services.prediction_chunks_create

    def spy(**kwargs):
        calls.append(dict(kwargs))
        return real(**kwargs)

    monkeypatch.setattr(services, "prediction_chunks_create", spy)
    return calls


def post(client, *files, **query):
    suffix = "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""
    return client.post(URL + suffix, {"images": list(files)}, format="multipart")


def stored_face(upload_id) -> np.ndarray:
    face = Upload.objects.get(pk=upload_id).face
    with face.pixels.png.open("rb") as fh, Image.open(fh) as image:
        assert image.size == (48, 48) and image.mode == "L"
        return np.asarray(image)


VALID = {
    "png_16bit_grey": (samples.png_16bit_grey, "image/png", (64, 48)),
    "cmyk_jpeg": (samples.cmyk_jpeg, "image/jpeg", (64, 48)),
    "rgba_png": (samples.rgba_png, "image/png", (64, 48)),
    "palette_png": (samples.palette_png, "image/png", (64, 48)),
    "exif_rotated_jpeg": (samples.exif_rotated_jpeg, "image/jpeg", (40, 80)),
    "animated_gif": (samples.animated_gif, "image/gif", (40, 40)),
    "webp": (samples.webp, "image/webp", (64, 48)),
    "bmp": (samples.bmp, "image/bmp", (64, 48)),
    "tiny_10x10": (lambda: samples.png(10, 10), "image/png", (10, 10)),
}


@pytest.mark.parametrize("case", VALID, ids=list(VALID))
def test_unusual_but_valid_images_are_accepted(client, enqueued, case):
    make, content_type, (width, height) = VALID[case]
    # Declared type and name say nothing useful: the format is sniffed from the bytes.
    file = samples.upload_file(make(), f"{case}.bin", "application/octet-stream")
    response = post(client, file, no_face="use_whole")
    assert response.status_code == 201, response.content
    (upload,) = response.json()["uploads"]
    assert upload["status"] == "queued"
    assert upload["content_type"] == content_type
    assert (upload["width"], upload["height"]) == (width, height)
    assert upload["face_found"] is False and upload["face_box"] is None and upload["no_face"] == "use_whole"
    assert upload["face_url"].endswith(".png") and upload["probabilities"] is None
    face = FaceImage.objects.get(pk=upload["face_id"])
    assert face.split == Split.UPLOAD and face.dataset.name == UPLOADS_DATASET and face.current_label is None
    stored_face(upload["id"])
    assert enqueued == [{"face_ids": [face.pk], "methods": ["gradcam"]}]


def test_exif_orientation_is_applied_before_cropping(client):
    response = post(client, samples.upload_file(samples.exif_rotated_jpeg(), "rotated.jpg"), no_face="use_whole")
    pixels = stored_face(response.json()["uploads"][0]["id"]).astype(int)
    # Displayed upright, the white half is on top (stored, it is on the left).
    assert pixels[:20].mean() > 200 and pixels[28:].mean() < 50


def test_animated_gif_uses_its_first_frame(client):
    response = post(client, samples.upload_file(samples.animated_gif(), "anim.gif", "image/gif"), no_face="use_whole")
    pixels = stored_face(response.json()["uploads"][0]["id"])
    assert abs(int(pixels.mean()) - 30) <= 2


def test_16bit_grey_is_scaled_not_clipped(client):
    response = post(client, samples.upload_file(samples.png_16bit_grey(), "deep.png", "image/png"),
                    no_face="use_whole")
    pixels = stored_face(response.json()["uploads"][0]["id"])
    assert pixels.min() < 30 and pixels.max() > 220  # a full-range ramp, not saturated at 255


def test_48x48_images_are_used_whole_by_default(client, enqueued):
    response = post(client, samples.upload_file(samples.face48(), "face.png", "image/png"))
    (upload,) = response.json()["uploads"]
    assert upload["status"] == "queued" and upload["no_face"] == "use_whole" and upload["face_found"] is False
    assert len(enqueued) == 1


def test_other_images_without_a_face_say_so_and_predict_nothing_by_default(client, enqueued, media_root):
    response = post(client, samples.upload_file(samples.jpeg(320, 240), "landscape.jpg"))
    assert response.status_code == 201
    (upload,) = response.json()["uploads"]
    assert upload["status"] == "no_face" and upload["no_face"] == "reject"
    assert upload["face_found"] is False and upload["face_id"] is None and upload["face_url"] is None
    assert FaceImage.objects.count() == 0 and enqueued == []
    assert upload["finished_at"] is not None
    # Asked to, the whole image is used instead.
    response = post(client, samples.upload_file(samples.jpeg(320, 240), "landscape.jpg"), no_face="use_whole")
    (upload,) = response.json()["uploads"]
    assert upload["status"] == "queued" and upload["face_id"] is not None
    # And use_whole can be refused for 48x48 images too.
    response = post(client, samples.upload_file(samples.face48(), "face.png", "image/png"), no_face="reject")
    assert response.json()["uploads"][0]["status"] == "no_face"


def test_several_files_in_one_request_are_queued_together(client, enqueued):
    files = [samples.upload_file(samples.png(48, 48, "L"), "a.png", "image/png"),
             samples.upload_file(samples.jpeg(320, 240), "b.jpg"),
             samples.upload_file(samples.png(30, 30), "c.png", "image/png")]
    files.append(samples.upload_file(samples.face48(), "d.png", "image/png"))
    response = client.post(URL + "?methods=gradcam,scorecam", {"images": files[:2], "image": files[2:]},
                           format="multipart")
    assert response.status_code == 201
    uploads = response.json()["uploads"]
    assert [u["original_name"] for u in uploads] == ["a.png", "b.jpg", "c.png", "d.png"]
    assert [u["status"] for u in uploads] == ["queued", "no_face", "no_face", "queued"]
    assert all(u["methods"] == ["gradcam", "scorecam"] for u in uploads)
    face_ids = [uploads[0]["face_id"], uploads[3]["face_id"]]
    assert enqueued == [{"face_ids": face_ids, "methods": ["gradcam", "scorecam"]}]
    # a.png and d.png have identical pixels: two face images, one stored PNG.
    faces = FaceImage.objects.filter(pk__in=[uploads[0]["face_id"], uploads[3]["face_id"]])
    assert len({f.pixels_id for f in faces}) == 1


def test_methods_as_a_form_field(client, enqueued):
    response = client.post(URL, {"image": samples.upload_file(samples.face48(), "f.png", "image/png"),
                                 "methods": "hirescam"}, format="multipart")
    assert response.json()["uploads"][0]["methods"] == ["hirescam"]
    assert enqueued[0]["methods"] == ["hirescam"]


def test_empty_methods_means_predictions_only(client, enqueued):
    response = post(client, samples.upload_file(samples.face48(), "f.png", "image/png"), methods="")
    assert response.json()["uploads"][0]["methods"] == []


def test_users_see_only_their_own_uploads(client_for, reviewer, researcher, admin_user):
    mine = post(client_for(reviewer), samples.upload_file(samples.face48(), "mine.png")).json()["uploads"][0]
    theirs = post(client_for(researcher), samples.upload_file(samples.face48(), "theirs.png")).json()["uploads"][0]

    reviewer_client = client_for(reviewer)
    assert reviewer_client.get(f"{URL}{mine['id']}/").status_code == 200
    response = reviewer_client.get(f"{URL}{theirs['id']}/")
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert reviewer_client.post(f"{URL}{theirs['id']}/explanations", {"method": "gradcam"},
                                format="json").status_code == 404
    assert [u["id"] for u in reviewer_client.get(URL).json()["results"]] == [mine["id"]]
    # Admins see everyone's.
    admin_client = client_for(admin_user)
    assert admin_client.get(f"{URL}{theirs['id']}/").status_code == 200
    assert {u["id"] for u in admin_client.get(URL).json()["results"]} == {mine["id"], theirs["id"]}
    # A malformed id is a JSON 404 too.
    assert reviewer_client.get(f"{URL}not-a-uuid/").status_code == 404


def test_list_is_paginated_newest_first(client):
    ids = [post(client, samples.upload_file(samples.face48(), f"{i}.png")).json()["uploads"][0]["id"]
           for i in range(3)]
    assert [u["id"] for u in client.get(URL).json()["results"]] == ids[::-1]
    page = client.get(URL + "?page_size=2").json()
    assert page["count"] == 3 and [u["id"] for u in page["results"]] == ids[::-1][:2]
    assert [u["id"] for u in client.get(page["next"]).json()["results"]] == ids[:1]


def test_session_auth_needs_the_csrf_token(reviewer):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(reviewer)
    page = browser.get("/uploads/")
    token = page.cookies["csrftoken"].value
    file = samples.upload_file(samples.face48(), "f.png", "image/png")
    assert browser.post(URL, {"images": [file]}).status_code == 403
    file.seek(0)
    assert browser.post(URL, {"images": [file]}, HTTP_X_CSRFTOKEN=token).status_code == 201


def test_uploads_are_throttled_per_user(client_for, reviewer, researcher, settings):
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "uploads": "2/min"}
    with override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}):
        client = client_for(reviewer)
        for _ in range(2):
            assert post(client, samples.upload_file(samples.face48(), "f.png")).status_code == 201
        response = post(client, samples.upload_file(samples.face48(), "f.png"))
        assert response.status_code == 429 and "throttled" in response.json()["detail"].lower()
        assert client.get(URL).status_code == 200  # reading is not limited
        # Another user has their own budget.
        assert post(client_for(researcher), samples.upload_file(samples.face48(), "f.png")).status_code == 201


def test_throttle_rate_comes_from_the_environment(monkeypatch):
    import importlib

    from django.core.exceptions import ImproperlyConfigured

    import ferplatform.settings.base as base

    monkeypatch.setenv("UPLOADS_THROTTLE_RATE", "5/hour")
    assert importlib.reload(base).REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["uploads"] == "5/hour"
    monkeypatch.setenv("UPLOADS_THROTTLE_RATE", "lots")
    with pytest.raises(ImproperlyConfigured, match="UPLOADS_THROTTLE_RATE"):
        importlib.reload(base)
    monkeypatch.delenv("UPLOADS_THROTTLE_RATE")
    importlib.reload(base)


def test_upload_page_needs_login(client, reviewer):
    from django.test import Client

    anonymous = Client().get("/uploads/")
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    browser = Client()
    browser.force_login(reviewer)
    page = browser.get("/uploads/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'capture="user"' in html and 'id="dropzone"' in html and "uploads/uploads.js" in html
    assert "scorecam" in html  # the CAM method switcher lists the methods


def test_schema_lists_the_upload_endpoints(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    assert "/api/uploads/" in schema and "/api/uploads/{upload_id}/explanations" in schema


def test_content_type_is_sniffed_even_when_declared_otherwise(client):
    data = io.BytesIO()
    Image.new("RGB", (48, 48), "white").save(data, "WEBP")
    response = post(client, samples.upload_file(data.getvalue(), "face.jpg", "image/jpeg"))
    assert response.json()["uploads"][0]["content_type"] == "image/webp"


def test_anyone_logged_in_may_upload(client_for):
    assert post(client_for(UserFactory()), samples.upload_file(samples.face48(), "f.png")).status_code == 201
