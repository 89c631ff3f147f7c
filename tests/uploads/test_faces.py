"""Every face of a photo: each one found (up to ``UPLOADS_MAX_FACES``, largest first) is predicted and explained on
its own, the upload's status waits for all of them, and the photo they were found in is kept for its owner."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from apps.inference.models import Explanation, Prediction
from apps.inference.services.predictions import prediction_failures_record
from apps.uploads.models import Upload, UploadFace
from tests.accounts.factories import UserFactory

from . import samples
from .conftest import media_files

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/uploads/"
PHOTOS = Path(__file__).resolve().parents[3] / "shared" / "data" / "photos"


@pytest.fixture
def no_tasks(monkeypatch):
    """Queue nothing: the test plays the worker by storing rows itself."""
    import apps.uploads.services as services

    monkeypatch.setattr(services, "prediction_chunks_create", lambda **kwargs: [])


def upload_group(client, faces: int = 2, **query) -> dict:
    suffix = "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""
    response = client.post(URL + suffix, {"images": [samples.upload_file(samples.group_jpeg(faces), "group.jpg")]},
                           format="multipart")
    assert response.status_code == 201, response.content
    return response.json()["uploads"][0]


def centre(box: dict) -> tuple[float, float]:
    return box["x"] + box["w"] / 2, box["y"] + box["h"] / 2


def test_every_face_is_predicted_and_explained_on_its_own(client, active_version, eager_tasks):
    upload = upload_group(client, 2, wait=10)
    assert upload["status"] == "done", upload
    faces = upload["faces"]
    assert [f["index"] for f in faces] == [0, 1]
    # Largest first, each box around the face drawn there (samples.GROUP_FACES: left one larger).
    assert faces[0]["box"]["w"] > faces[1]["box"]["w"]
    for face, (cx, cy, half) in zip(faces, samples.GROUP_FACES, strict=False):
        x, y = centre(face["box"])
        assert abs(x - cx) < half / 2 and abs(y - cy) < half, (face["box"], cx, cy)
        left, top, right, bottom = face["crop_box"]
        assert left <= face["box"]["x"] and right >= face["box"]["x"] + face["box"]["w"]
        assert right - left == bottom - top
    assert len({f["face_id"] for f in faces}) == 2
    for face in faces:
        assert face["status"] == "done" and face["error"] == ""
        assert abs(sum(face["probabilities"].values()) - 1) < 1e-3
        assert face["predicted_label"] == max(face["probabilities"], key=face["probabilities"].get)
        assert face["model_version"] == {"id": active_version.pk, "name": "tiny-v1"}
        (heatmap,) = face["heatmaps"]
        assert heatmap["method"] == "gradcam" and heatmap["target_label"] == face["predicted_label"]
        assert client.get(heatmap["url"]).status_code == 200  # its owner may fetch every face's files
        assert client.get(face["face_url"]).status_code == 200
    assert Prediction.objects.filter(face_id__in=[f["face_id"] for f in faces]).count() == 2
    # The upload's own fields are its largest face's, as before faces were listed.
    assert (upload["face_id"], upload["face_box"], upload["predicted_label"], upload["probabilities"]) == (
        faces[0]["face_id"], faces[0]["box"], faces[0]["predicted_label"], faces[0]["probabilities"])
    assert upload["face_found"] is True
    row = Upload.objects.get(pk=upload["id"])
    assert row.status == "done" and row.crop_box == faces[0]["crop_box"]
    assert {f.chunk_id for f in row.faces.all()} == {row.chunk_id}  # both faces in the upload's one chunk


def test_faces_beyond_the_limit_are_left_out_smallest_first(client, active_version, settings, no_tasks):
    settings.UPLOADS_MAX_FACES = 2
    upload = upload_group(client, 3)
    assert [centre(f["box"])[0] < 320 for f in upload["faces"]] == [True, False]  # the two larger ones
    assert upload["faces"][1]["box"]["w"] > 100  # not the small third face
    settings.UPLOADS_MAX_FACES = 3
    assert len(upload_group(client, 3)["faces"]) == 3


def test_the_upload_is_finished_only_when_every_face_is(client, active_version, no_tasks):
    upload = upload_group(client, 2)
    first, second = (f["face_id"] for f in upload["faces"])
    Prediction.objects.create(face_id=first, model_version=active_version,
                              probabilities=[0.1, 0, 0, 0.6, 0.1, 0.1, 0.1], predicted_label=3, confidence=0.6)
    Explanation.objects.create(face_id=first, model_version=active_version, method="gradcam", target_label=3,
                               raw_map=bytes(48 * 48), overlay="explanations/x.png")
    detail = client.get(f"{URL}{upload['id']}/").json()
    assert [f["status"] for f in detail["faces"]] == ["done", "queued"]
    assert detail["status"] == "queued" and detail["predicted_label"] == "happy"
    prediction_failures_record(face_ids=[second], error="RuntimeError: out of memory")
    detail = client.get(f"{URL}{upload['id']}/").json()
    assert [f["status"] for f in detail["faces"]] == ["done", "failed"]
    assert detail["faces"][1]["error"] == "RuntimeError: out of memory"
    assert detail["status"] == "failed" and detail["error"] == "RuntimeError: out of memory"


def test_a_heatmap_of_any_face_on_demand(client, active_version, eager_tasks):
    upload = upload_group(client, 2, wait=10)
    url = f"{URL}{upload['id']}/explanations"
    second = upload["faces"][1]
    response = client.post(f"{url}?wait=5", {"method": "layercam", "face": 1}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["method"] == "layercam" and response.json()["target_label"] == second["predicted_label"]
    assert Explanation.objects.filter(face_id=second["face_id"], method="layercam").count() == 1
    assert not Explanation.objects.filter(face_id=upload["faces"][0]["face_id"], method="layercam").exists()
    detail = client.get(f"{URL}{upload['id']}/").json()
    assert {h["method"] for h in detail["faces"][1]["heatmaps"]} == {"gradcam", "layercam"}
    assert {h["method"] for h in detail["faces"][0]["heatmaps"]} == {"gradcam"}
    missing = client.post(url, {"method": "gradcam", "face": 2}, format="json")
    assert missing.status_code == 404 and "no face 2" in missing.json()["detail"]
    negative = client.post(url, {"method": "gradcam", "face": -1}, format="json")
    assert negative.status_code == 400


def test_no_face_and_whole_image_uploads_list_what_was_predicted(client, active_version, no_tasks):
    photo = samples.upload_file(samples.jpeg(200, 150), "x.jpg")
    rejected = client.post(URL, {"images": [photo]}, format="multipart").json()["uploads"][0]
    assert rejected["status"] == "no_face" and rejected["faces"] == []
    whole = client.post(URL + "?no_face=use_whole", {"images": [samples.upload_file(samples.jpeg(200, 150), "x.jpg")]},
                        format="multipart").json()["uploads"][0]
    (face,) = whole["faces"]
    assert face["box"] is None and face["crop_box"] == [0, 0, 200, 150] and face["face_id"] == whole["face_id"]


def test_the_photo_is_kept_oriented_and_shown_only_to_its_owner(client, client_for, admin_user, no_tasks):
    upload = upload_group(client, 2)
    photo = client.get(upload["photo_url"])
    assert photo.status_code == 200 and photo["Content-Type"] == "image/jpeg"
    assert photo["Cache-Control"] == "private, max-age=300"
    shown = Image.open(io.BytesIO(b"".join(photo.streaming_content)))
    assert shown.size == (upload["width"], upload["height"]) == (640, 400)
    assert client_for(UserFactory()).get(upload["photo_url"]).status_code == 404  # someone else's: not revealed
    assert client_for(admin_user).get(upload["photo_url"]).status_code == 200
    rotated = client.post(URL + "?no_face=use_whole", {
        "images": [samples.upload_file(samples.exif_rotated_jpeg(), "r.jpg")]}, format="multipart").json()["uploads"][0]
    shown = Image.open(io.BytesIO(b"".join(client.get(rotated["photo_url"]).streaming_content)))
    assert shown.size == (rotated["width"], rotated["height"]) == (40, 80)  # the frame the boxes are in
    assert Image.open(io.BytesIO(b"".join(client.get(rotated["photo_url"]).streaming_content))).getpixel((20, 10)) \
        > (200, 200, 200)  # the white half is on top, as displayed


def test_an_upload_from_before_photos_were_kept_says_so(client, reviewer, no_tasks):
    upload = upload_group(client, 1)
    Upload.objects.filter(pk=upload["id"]).update(photo="")
    detail = client.get(f"{URL}{upload['id']}/").json()
    assert detail["photo_url"] is None and len(detail["faces"]) == 1
    response = client.get(upload["photo_url"])
    assert response.status_code == 410 and response.json()["code"] == "photo_not_kept"


def test_a_failed_record_leaves_no_photo_behind(client, media_root, monkeypatch, no_tasks):
    import apps.uploads.services as services

    def broken(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(services, "_upload_record", broken)
    with pytest.raises(RuntimeError):
        upload_group(client, 2)
    assert Upload.objects.count() == UploadFace.objects.count() == 0
    assert media_files(media_root) == []  # neither the photo nor the face PNGs


@pytest.mark.skipif(not PHOTOS.is_dir(), reason=f"the shared photos are not here ({PHOTOS})")
def test_two_people_gives_two_faces(client, no_tasks):
    data = (PHOTOS / "two_people.jpg").read_bytes()
    response = client.post(URL, {"images": [samples.upload_file(data, "two_people.jpg")]}, format="multipart")
    upload = response.json()["uploads"][0]
    assert len(upload["faces"]) == 2
    (a, b) = (f["box"] for f in upload["faces"])
    assert a["w"] * a["h"] >= b["w"] * b["h"]
    assert a["x"] + a["w"] <= b["x"] or b["x"] + b["w"] <= a["x"] or a["y"] + a["h"] <= b["y"] \
        or b["y"] + b["h"] <= a["y"]  # two different faces, not overlapping
