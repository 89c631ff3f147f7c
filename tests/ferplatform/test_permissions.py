"""The permission matrix: every URL pattern (from the resolver) and every API operation (from the OpenAPI schema),
tried as anonymous, reviewer, another reviewer, researcher, admin and an upload's owner, against who may use it.

A new URL or operation without an entry in ``AUDIENCE`` fails ``test_every_url_and_operation_has_an_entry``."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.roles import Role
from apps.faces.models import Split
from apps.inference.models import Explanation, ModelVersion
from apps.review.models import ReviewItem, ScoringRun
from apps.uploads.models import Upload
from tests.accounts.factories import UserFactory
from tests.faces.factories import FaceImageFactory

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "reviewer", "other_reviewer", "researcher", "admin", "owner")
AUTHENTICATED = frozenset(ROLES) - {"anonymous"}
REVIEWERS = frozenset({"reviewer", "other_reviewer", "admin"})
RESEARCHERS = frozenset({"researcher", "admin"})
ADMINS = frozenset({"admin"})
EVERYONE = frozenset(ROLES)
NOBODY: frozenset[str] = frozenset()

# URL name -> who may use it. "owner:" entries are object-level: everyone authenticated passes the role check, but
# only the owner (and admins) see the object; the others get a 404 that does not reveal it.
AUDIENCE: dict[str, frozenset[str] | str] = {
    "home": AUTHENTICATED, "user-list": ADMINS, "login": EVERYONE, "logout": EVERYONE,
    "password_change": AUTHENTICATED, "password_change_done": AUTHENTICATED, "password_reset": EVERYONE,
    "password_reset_done": EVERYONE, "password_reset_confirm": EVERYONE, "password_reset_complete": EVERYONE,
    "admin": ADMINS,
    "api-token": EVERYONE, "api-me": AUTHENTICATED, "api-users": ADMINS,
    "api-tokens": AUTHENTICATED, "api-tokens-revoke": AUTHENTICATED, "api-token-revoke": AUTHENTICATED,
    "api-user-tokens": ADMINS, "api-user-tokens-revoke": ADMINS,
    "status": ADMINS, "api-status": ADMINS, "api-models": RESEARCHERS, "api-model-activate": ADMINS,
    "api-face-prediction": RESEARCHERS, "api-face-explanations": RESEARCHERS,
    "uploads": AUTHENTICATED, "api-uploads": AUTHENTICATED, "api-upload-detail": "owner:upload",
    "api-upload-explanations": "owner:upload", "api-upload-photo": "owner:upload",
    "review-grid": REVIEWERS, "review-api-grid-page": REVIEWERS, "review-api-grid-votes": REVIEWERS,
    "faces-near-duplicates": RESEARCHERS, "api-near-duplicates": RESEARCHERS, "api-near-duplicate-runs": ADMINS,
    "datamap": RESEARCHERS, "api-datamap-maps": RESEARCHERS, "api-datamap-map": RESEARCHERS,
    "review": REVIEWERS, "review-reviewers": REVIEWERS, "review-api-next": REVIEWERS, "review-api-item": REVIEWERS,
    "review-api-vote": REVIEWERS, "review-api-skip": REVIEWERS, "review-api-reopen": ADMINS,
    "review-api-settle": ADMINS, "review-api-model": REVIEWERS, "review-api-undo": REVIEWERS,
    "review-api-stats": REVIEWERS, "review-api-agreement": REVIEWERS, "review-api-gold": ADMINS,
    "review-api-scoring-runs": ADMINS, "review-api-scoring-run": ADMINS, "review-api-scoring-run-cancel": ADMINS,
    "review-api-scoring-run-resume": ADMINS, "review-scoring": ADMINS, "review-api-export-kaggle": RESEARCHERS,
    "review-api-export-ferplus": RESEARCHERS, "review-api-export-history": RESEARCHERS,
    "training": ADMINS, "api-training-runs": ADMINS, "api-training-run": ADMINS, "api-training-run-cancel": ADMINS,
    "api-training-run-retry": ADMINS, "api-model-promote": ADMINS, "api-model-rollback": ADMINS,
    "api-model-comparison": ADMINS,
    "gallery": RESEARCHERS, "gallery-export": RESEARCHERS, "gallery-face": RESEARCHERS, "gallery-compare": RESEARCHERS,
    "gallery-evaluation": RESEARCHERS, "gallery-confusion-png": RESEARCHERS, "gallery-curves-png": RESEARCHERS,
    "gallery-class-maps-png": RESEARCHERS, "api-gallery-faces": RESEARCHERS, "api-gallery-face": RESEARCHERS,
    "api-gallery-explanations": RESEARCHERS, "api-gallery-evaluation": RESEARCHERS,
    "api-gallery-class-maps": RESEARCHERS, "api-gallery-faithfulness": ADMINS, "api-gallery-compare": RESEARCHERS,
    "api-schema": EVERYONE, "api-docs": EVERYONE,
    # /media/: one entry per kind of stored file (see MEDIA below).
    "media": "media",
}
# Each kind of /media/ path: the face access rule decides (apps.faces.selectors.faces_visible_to).
MEDIA = {
    "upload face PNG": frozenset({"owner", "admin"}),
    "Training face PNG": RESEARCHERS,
    "leased face PNG": RESEARCHERS | {"reviewer"},
    "Training heatmap": RESEARCHERS,
    "checkpoint": NOBODY,
    "anything else": NOBODY,
}


def url_patterns(patterns=None, prefix: str = ""):
    """(route, name) of every URL pattern; the admin site counts as one entry (``admin``)."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            if pattern.namespace == "admin":
                yield prefix + str(pattern.pattern), "admin"
            else:
                yield from url_patterns(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern.name


@pytest.fixture
def world(settings, tmp_path):
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    settings.INFERENCE_REFRESH_ON_ACTIVATE = False
    users = {
        "reviewer": UserFactory(username="m-reviewer", roles=[Role.REVIEWER]),
        "other_reviewer": UserFactory(username="m-other", roles=[Role.REVIEWER]),
        "researcher": UserFactory(username="m-researcher", roles=[Role.RESEARCHER]),
        "admin": UserFactory(username="m-admin", roles=[Role.ADMIN], is_staff=True, is_superuser=True),
        "owner": UserFactory(username="m-owner", roles=[]),
    }
    version = ModelVersion.objects.create(name="m", arch="fer_vgg", checkpoint="models/abc.pt",
                                          checkpoint_sha256="0" * 64)
    training = FaceImageFactory(split=Split.TRAINING)
    leased = FaceImageFactory(split=Split.TRAINING)
    item = ReviewItem.objects.create(face=leased, priority=0.1, lease_holder=users["reviewer"],
                                     lease_expires_at=timezone.now() + timezone.timedelta(minutes=5))
    upload_face = FaceImageFactory(split=Split.UPLOAD, original_label=None)
    upload = Upload.objects.create(user=users["owner"], face=upload_face, original_name="me.jpg",
                                   content_type="image/jpeg", size=1, width=48, height=48, methods=["gradcam"])
    overlay = default_storage.save(f"explanations/v{version.pk}/x.png", ContentFile(b"\x89PNG fake"))
    Explanation.objects.create(face=training, model_version=version, method="gradcam", target_label=3,
                               raw_map=bytes(48 * 48), overlay=overlay)
    media = {"upload face PNG": upload_face.pixels.png.url, "Training face PNG": training.pixels.png.url,
             "leased face PNG": leased.pixels.png.url, "Training heatmap": default_storage.url(overlay),
             "checkpoint": version.checkpoint.url, "anything else": "/media/README.txt"}
    ids = {"pk": training.pk, "item_id": item.pk, "upload_id": str(upload.pk), "uidb64": "MQ", "token": "x-y",
           "key": "0" * 15, "user_id": users["owner"].pk, "run_id": ScoringRun.objects.create().pk}
    return {"users": users, "media": media, "ids": ids, "version": version}


def concrete(route: str, ids: dict) -> str:
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(ids[m.group(1)]), route)
    return "/" + path.lstrip("^").rstrip("$")


def client_for(role: str, world, *, api: bool):
    client = APIClient() if api else Client()
    if role != "anonymous":
        client.force_login(world["users"][role])
    return client


def denied(role: str, response, *, api: bool) -> bool:
    if role == "anonymous":
        if api:
            return response.status_code == 401 and "WWW-Authenticate" in response
        return response.status_code == 302 and "login" in response["Location"]
    return response.status_code in (403, 302) if not api else response.status_code == 403


def schema_operations(world) -> dict[str, list[str]]:
    client = client_for("admin", world, api=True)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    return {path: sorted(m.upper() for m in item if m in ("get", "post", "put", "patch", "delete"))
            for path, item in schema["paths"].items()}


def test_every_url_and_operation_has_an_entry(world):
    names = {name for _, name in url_patterns()}
    assert names - set(AUDIENCE) == set(), "URL patterns without an entry in AUDIENCE"
    assert set(AUDIENCE) - names == set(), "AUDIENCE entries whose URL is gone"
    placeholders = {k: "{" + k + "}" for k in ("pk", "item_id", "upload_id", "key", "user_id", "run_id")}
    api_routes = {concrete(route, placeholders) for route, name in url_patterns() if route.startswith("api/")}
    declared = {re.sub(r"\{[^}]+\}", "{x}", p) for p in schema_operations(world)}
    routes = {re.sub(r"\{[^}]+\}", "{x}", r) for r in api_routes}
    assert declared - routes == set() and routes - declared <= {"/api/schema/", "/api/docs/"}


def test_the_matrix(world):
    operations = schema_operations(world)
    failures = []
    for route, name in url_patterns():
        audience = AUDIENCE[name]
        if audience == "media":
            continue
        path = concrete(route, world["ids"]) if name != "admin" else "/admin/"
        api = path.startswith("/api/")
        template = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", "/" + route)
        methods = operations.get(template, ["GET"]) if api else ["GET"]
        for method in methods:
            for role in ROLES:
                client = client_for(role, world, api=api)
                response = getattr(client, method.lower())(path, {}, format="json") if api and method != "GET" \
                    else getattr(client, method.lower())(path)
                if response.status_code >= 500:
                    failures.append((method, path, role, response.status_code, "server error"))
                    continue
                if isinstance(audience, str) and audience.startswith("owner:"):
                    allowed = role in ("owner", "admin")
                    ok = (response.status_code not in (401, 403, 404)) if allowed else (
                        denied(role, response, api=api) if role == "anonymous" else response.status_code == 404)
                else:
                    allowed = role in audience
                    ok = response.status_code not in (401, 403) if allowed else denied(role, response, api=api)
                    if allowed and not api and response.status_code == 302:
                        ok = "login" not in response["Location"] or name == "logout"
                if not ok:
                    failures.append((method, path, role, response.status_code, "allowed" if allowed else "denied"))
    assert failures == []


@pytest.mark.parametrize("kind", list(MEDIA))
def test_media_matrix(world, kind):
    url = world["media"][kind]
    for role in ROLES:
        response = client_for(role, world, api=False).get(url)
        expected = 200 if role in MEDIA[kind] else 404
        assert response.status_code == expected, (kind, role, response.status_code)


# Gold faces of every split and an upload's face, offered to POST /api/review/gold: only a scored Training face
# becomes gold. Then both reviewers take what the queue hands out, and every role fetches the face's PNG: a reviewer
# gets it only through a lease, so a PrivateTest face or someone's upload never reaches one.
GOLD = {"scored Training": True, "unscored Training": False, "PublicTest": False, "PrivateTest": False,
        "upload": False}


@pytest.mark.parametrize("kind", list(GOLD))
def test_gold_matrix(world, kind, settings):
    from apps.review.models import LabelScore

    settings.GALLERY_SHOW_PRIVATE_TEST = True  # admins may see PrivateTest; a reviewer must still never get it
    faces = {"scored Training": FaceImageFactory(split=Split.TRAINING),
             "unscored Training": FaceImageFactory(split=Split.TRAINING),
             "PublicTest": FaceImageFactory(split=Split.PUBLIC_TEST),
             "PrivateTest": FaceImageFactory(split=Split.PRIVATE_TEST),
             "upload": Upload.objects.get(pk=world["ids"]["upload_id"]).face}
    face = faces[kind]
    if kind != "unscored Training":  # a score on a face outside Training should not exist; refused even so
        LabelScore.objects.create(run_id=world["ids"]["run_id"], face=face, given_label=3, quality=0.05,
                                  is_issue=True, suggested_label=5, suggested_probability=0.5,
                                  probabilities=[1 / 7] * 7)
    response = client_for("admin", world, api=True).post("/api/review/gold", {"face": face.pk, "label": 2},
                                                         format="json")
    assert response.status_code == (201 if GOLD[kind] else 400), response.content
    served = set()
    for role in ("reviewer", "other_reviewer"):
        items = client_for(role, world, api=True).get("/api/review/items/next", {"count": 3}).json()["items"]
        served |= {role for item in items if item["face"] == face.pk}
    assert bool(served) == GOLD[kind]
    expected = {"scored Training": RESEARCHERS | served, "unscored Training": RESEARCHERS, "PublicTest": RESEARCHERS,
                "PrivateTest": ADMINS, "upload": frozenset({"owner", "admin"})}[kind]
    for role in ROLES:
        status = client_for(role, world, api=False).get(face.pixels.png.url).status_code
        assert status == (200 if role in expected else 404), (kind, role, status)
