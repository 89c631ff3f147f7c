"""API tokens (django-rest-knox): hashed at rest, expiring, revoked by a password change, listed and revoked by
their owner and by admins; missing or bad credentials are a 401 with a WWW-Authenticate challenge."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from apps.accounts.services import api_token_create
from tests.api_errors import error_body

from .factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def token_client(secret: str) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return api


def obtain(user, password: str = PASSWORD) -> dict:
    answer = APIClient().post(reverse("api-token"), {"username": user.username, "password": password}, format="json")
    assert answer.status_code == 200, answer.content
    return answer.json()


def test_obtain_returns_the_token_and_its_expiry(reviewer, settings):
    body = obtain(reviewer)
    assert set(body) == {"token", "id", "expiry"} and body["token"].startswith(body["id"])
    expiry = AuthToken.objects.get(user=reviewer).expiry
    assert abs(expiry - (timezone.now() + settings.REST_KNOX["TOKEN_TTL"])) < timedelta(minutes=1)
    assert token_client(body["token"]).get(reverse("api-me")).json()["username"] == reviewer.username


def test_tokens_are_stored_hashed(reviewer):
    secret = obtain(reviewer)["token"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM knox_authtoken")
        rows = cursor.fetchall()
    assert len(rows) == 1
    assert not any(isinstance(value, str) and secret in value for value in rows[0])
    assert AuthToken.objects.get().digest == hashlib.sha512(secret.encode()).hexdigest()
    assert not connection.introspection.table_names().count("authtoken_token")  # the plain-text table is gone


def test_an_expired_token_is_refused_and_deleted(reviewer):
    _, secret = api_token_create(user=reviewer, ttl=timedelta(seconds=-1))
    answer = token_client(secret).get(reverse("api-me"))
    assert answer.status_code == 401 and error_body(answer)["code"] == "authentication_failed"
    assert not AuthToken.objects.filter(user=reviewer).exists()


def test_anonymous_and_bad_tokens_get_401_with_a_challenge(reviewer):
    for api in (APIClient(), token_client("not-a-token"), token_client("0" * 64)):
        answer = api.get(reverse("api-me"))
        assert answer.status_code == 401 and answer["WWW-Authenticate"] == "Token", answer.content
        assert error_body(answer)["code"] in ("not_authenticated", "authentication_failed")
    # A logged-in user without the role is still a 403.
    _, secret = api_token_create(user=reviewer)
    assert token_client(secret).get(reverse("api-users")).status_code == 403


def test_the_obtain_endpoint_ignores_a_stale_token_header(reviewer):
    api = token_client("0" * 64)
    answer = api.post(reverse("api-token"), {"username": reviewer.username, "password": PASSWORD}, format="json")
    assert answer.status_code == 200


def test_password_change_view_revokes_tokens(client, reviewer):
    secret = obtain(reviewer)["token"]
    client.force_login(reviewer)
    answer = client.post(reverse("password_change"), {"old_password": PASSWORD, "new_password1": "a-new-Secret-77",
                                                      "new_password2": "a-new-Secret-77"})
    assert answer.status_code == 302
    assert token_client(secret).get(reverse("api-me")).status_code == 401
    assert not AuthToken.objects.filter(user=reviewer).exists()


def test_set_password_anywhere_revokes_tokens_and_other_saves_do_not(reviewer, researcher):
    kept = obtain(researcher)["token"]
    secret = obtain(reviewer)["token"]
    reviewer.email = "new@example.org"
    reviewer.save()
    reviewer.last_login = timezone.now()
    reviewer.save(update_fields=["last_login"])
    assert token_client(secret).get(reverse("api-me")).status_code == 200
    user = get_user_model().objects.get(pk=reviewer.pk)
    user.set_password("another-Secret-88")
    user.save()
    assert token_client(secret).get(reverse("api-me")).status_code == 401
    assert token_client(kept).get(reverse("api-me")).status_code == 200  # other users' tokens stay


def test_admin_password_form_revokes_tokens(client, admin_user, reviewer):
    secret = obtain(reviewer)["token"]
    client.force_login(admin_user)
    url = reverse("admin:auth_user_password_change", args=[reviewer.pk])
    answer = client.post(url, {"password1": "admin-set-Secret-99", "password2": "admin-set-Secret-99"})
    assert answer.status_code == 302, answer.content
    assert token_client(secret).get(reverse("api-me")).status_code == 401


def test_a_hash_upgrade_on_login_is_not_a_password_change(settings, reviewer):
    """Django re-hashes a password on login when the preferred hasher changes: same password, the tokens stay."""
    from django.contrib.auth.hashers import make_password

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher",
                                 "django.contrib.auth.hashers.ScryptPasswordHasher"]
    get_user_model().objects.filter(pk=reviewer.pk).update(password=make_password(PASSWORD, hasher="scrypt"))
    _, secret = api_token_create(user=reviewer)
    obtain(reviewer)  # logs in: the hash is upgraded to the preferred hasher
    assert get_user_model().objects.get(pk=reviewer.pk).password.startswith("md5$")
    assert token_client(secret).get(reverse("api-me")).status_code == 200


def test_owner_lists_tokens_without_secrets(reviewer, researcher):
    first = obtain(reviewer)
    second = obtain(reviewer)
    obtain(researcher)
    api_token_create(user=reviewer, ttl=timedelta(seconds=-1))  # expired: not listed
    listed = token_client(second["token"]).get(reverse("api-tokens")).json()["results"]
    assert [t["id"] for t in listed] == [second["id"], first["id"]]
    assert [t["current"] for t in listed] == [True, False]
    assert set(listed[0]) == {"id", "user", "username", "created", "expiry", "current"}
    assert all(len(t["id"]) < 20 for t in listed) and second["token"] not in str(listed)


def test_owner_revokes_one_token_then_all(reviewer):
    first, second, third = obtain(reviewer), obtain(reviewer), obtain(reviewer)
    api = token_client(third["token"])
    answer = api.post(reverse("api-token-revoke", args=[first["id"]]))
    assert answer.status_code == 200 and answer.json() == {"revoked": 1}
    assert token_client(first["token"]).get(reverse("api-me")).status_code == 401
    assert token_client(second["token"]).get(reverse("api-me")).status_code == 200
    assert api.post(reverse("api-tokens-revoke")).json() == {"revoked": 2}
    assert token_client(second["token"]).get(reverse("api-me")).status_code == 401
    assert api.get(reverse("api-me")).status_code == 401  # the token in use went too


def test_another_user_cannot_revoke_or_see_your_token(reviewer, researcher):
    yours = obtain(reviewer)
    other = token_client(obtain(researcher)["token"])
    answer = other.post(reverse("api-token-revoke", args=[yours["id"]]))
    assert answer.status_code == 404 and error_body(answer)["code"] == "not_found"
    assert yours["id"] not in str(other.get(reverse("api-tokens")).json())
    assert other.get(reverse("api-user-tokens", args=[reviewer.pk])).status_code == 403
    assert other.post(reverse("api-user-tokens-revoke", args=[reviewer.pk])).status_code == 403
    assert token_client(yours["token"]).get(reverse("api-me")).status_code == 200


def test_admins_list_and_revoke_anyones_tokens(reviewer, admin_user):
    first, second = obtain(reviewer), obtain(reviewer)
    admin = APIClient()
    admin.force_login(admin_user)
    listed = admin.get(reverse("api-user-tokens", args=[reviewer.pk])).json()["results"]
    assert {t["id"] for t in listed} == {first["id"], second["id"]}
    assert {t["username"] for t in listed} == {"rita-reviewer"}
    assert admin.post(reverse("api-token-revoke", args=[first["id"]])).json() == {"revoked": 1}
    assert admin.post(reverse("api-user-tokens-revoke", args=[reviewer.pk])).json() == {"revoked": 1}
    assert not AuthToken.objects.filter(user=reviewer).exists()
    assert admin.get(reverse("api-user-tokens", args=[999999])).status_code == 404


def test_session_clients_list_their_tokens_too(client, reviewer):
    obtain(reviewer)
    client.force_login(reviewer)
    listed = client.get(reverse("api-tokens")).json()["results"]
    assert len(listed) == 1 and listed[0]["current"] is False


def test_email_is_null_when_unset_as_the_schema_says(admin_user):
    nobody = UserFactory(email="")
    api = APIClient()
    api.force_login(admin_user)
    users = {u["username"]: u for u in api.get(reverse("api-users")).json()["results"]}
    assert users[nobody.username]["email"] is None and users["ada-admin"]["email"] == "ada-admin@example.org"
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    email = schema["components"]["schemas"]["User"]["properties"]["email"]
    assert email["format"] == "email" and email["nullable"] is True
