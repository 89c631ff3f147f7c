"""Media behind the one face access rule: face PNGs, heatmaps and checkpoints were public, and a researcher could
reach another user's upload through the faces API. Each case here was a leak."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.accounts.roles import Role
from apps.faces.models import Split
from apps.faces.selectors import faces_visible_to
from apps.inference.models import Explanation, ModelVersion
from apps.inference.services.predictions import predict_and_explain
from apps.inference.services.registry import model_version_register
from apps.review.models import ReviewItem
from apps.uploads.models import Upload
from tests.accounts.factories import UserFactory
from tests.faces.factories import FaceImageFactory
from tests.inference.conftest import write_tiny_checkpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(tmp_path, settings, reviewer, researcher, admin_user):
    """An upload of ``owner``, a Training, a PublicTest and a PrivateTest face, each with a stored heatmap, and a
    review item leased to ``reviewer``."""
    settings.INFERENCE_REFRESH_ON_ACTIVATE = False
    version = model_version_register(checkpoint_path=write_tiny_checkpoint(tmp_path / "t.pt", seed=4), name="t",
                                     activate=True)
    owner = UserFactory(username="olga-owner", roles=[Role.REVIEWER])
    faces = {split: FaceImageFactory(split=split) for split in (Split.TRAINING, Split.PUBLIC_TEST, Split.PRIVATE_TEST)}
    faces["upload"] = FaceImageFactory(split=Split.UPLOAD, original_label=None)
    Upload.objects.create(user=owner, face=faces["upload"], original_name="me.jpg", content_type="image/jpeg",
                          size=1, width=48, height=48, methods=["gradcam"])
    faces["leased"] = FaceImageFactory(split=Split.TRAINING)
    from django.utils import timezone

    ReviewItem.objects.create(face=faces["leased"], priority=0.1, lease_holder=reviewer,
                              lease_expires_at=timezone.now() + timezone.timedelta(minutes=5))
    predict_and_explain(face_ids=[f.pk for f in faces.values()], methods=["gradcam"], version=version)
    return {"version": version, "owner": owner, "faces": faces, "reviewer": reviewer, "researcher": researcher,
            "admin": admin_user, "other": UserFactory(username="oscar-other", roles=[Role.REVIEWER])}


def session(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def urls_of(face) -> list[str]:
    return [face.pixels.png.url, *[e.overlay.url for e in Explanation.objects.filter(face=face)]]


# Who may fetch which face's files: (face, user, allowed).
EXPECTED = [
    ("upload", None, False), ("upload", "owner", True), ("upload", "admin", True), ("upload", "researcher", False),
    ("upload", "other", False),
    ("Training", None, False), ("Training", "researcher", True), ("Training", "reviewer", False),
    ("PublicTest", "researcher", True), ("PublicTest", "other", False),
    ("PrivateTest", "researcher", False), ("PrivateTest", "admin", False),
    ("leased", "reviewer", True), ("leased", "other", False), ("leased", None, False),
]


@pytest.mark.parametrize(("face", "who", "allowed"), EXPECTED, ids=[f"{f}-{w}" for f, w, _ in EXPECTED])
def test_media_follows_the_face_access_rule(world, face, who, allowed):
    client = session(world[who] if who else None)
    for url in urls_of(world["faces"][face]):
        response = client.get(url)
        assert response.status_code == (200 if allowed else 404), (url, who)
        if allowed:
            assert response["Content-Type"] == "image/png" and b"".join(response.streaming_content)[:4] == b"\x89PNG"
            assert "private" in response["Cache-Control"]


def test_private_test_is_shown_to_admins_only_when_enabled(world, settings):
    settings.GALLERY_SHOW_PRIVATE_TEST = True
    face = world["faces"]["PrivateTest"]
    assert session(world["admin"]).get(face.pixels.png.url).status_code == 200
    assert session(world["researcher"]).get(face.pixels.png.url).status_code == 404


def test_checkpoints_are_never_served(world):
    checkpoint = ModelVersion.objects.get().checkpoint
    assert checkpoint.url.startswith("/media/models/")
    for who in (None, "researcher", "admin"):
        assert session(world[who] if who else None).get(checkpoint.url).status_code == 404


def test_traversal_and_other_files_are_refused(world):
    client = session(world["admin"])
    for path in ("/media/../ferplatform/settings/base.py", "/media/faces/../../manage.py", "/media/x.txt",
                 "/media/faces//a.png"):
        assert client.get(path).status_code == 404, path


def test_stored_names_carry_no_content_hash(world):
    face = world["faces"]["Training"]
    assert face.pixels.sha256 not in face.pixels.png.name


def test_behind_nginx_the_view_hands_the_file_over_with_x_accel_redirect(world, settings):
    settings.MEDIA_X_ACCEL_PREFIX = "/internal-media/"
    face = world["faces"]["upload"]
    response = session(world["owner"]).get(face.pixels.png.url)
    assert response.status_code == 200 and response.content == b""
    assert response["X-Accel-Redirect"] == "/internal-media/" + face.pixels.png.name
    assert session(world["other"]).get(face.pixels.png.url).status_code == 404  # checked before handing over


def test_an_api_client_fetches_its_own_heatmap_with_its_token(world):
    from rest_framework.test import APIClient

    from tests.accounts.factories import PASSWORD

    client = APIClient()
    token = client.post("/api/auth/token/", {"username": "olga-owner", "password": PASSWORD}, format="json")
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.json()['token']}")
    assert client.get(urls_of(world["faces"]["upload"])[1]).status_code == 200
    assert client.get(urls_of(world["faces"]["Training"])[0]).status_code == 404


def test_a_researcher_cannot_reach_another_users_upload_through_the_faces_api(world):
    from rest_framework.test import APIClient

    face = world["faces"]["upload"]
    client = APIClient()
    client.force_authenticate(world["researcher"])
    assert client.get(f"/api/faces/{face.pk}/prediction").status_code == 404
    assert client.post(f"/api/faces/{face.pk}/explanations", {"method": "gradcam"}, format="json").status_code == 404
    assert client.get(f"/api/faces/{world['faces']['Training'].pk}/prediction").status_code == 200
    client.force_authenticate(world["owner"])  # a reviewer role only, but it is their upload
    assert client.get(f"/api/faces/{face.pk}/prediction").status_code == 403  # the faces API is for researchers


def test_the_rule_in_one_place(world):
    visible = {name for name, face in world["faces"].items()
               if faces_visible_to(world["reviewer"]).filter(pk=face.pk).exists()}
    assert visible == {"leased"}
