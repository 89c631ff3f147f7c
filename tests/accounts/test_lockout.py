"""Brute force on the three password entry points (login form, admin login, POST /api/auth/token/): django-axes
counts failures per username and per client address, refuses even the right password while locked, and lets it in
again after the cool-down."""

from __future__ import annotations

import ipaddress
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.db.models import F
from django.urls import reverse
from knox.models import AuthToken
from rest_framework.test import APIClient

from tests.api_errors import error_body

from .factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def cool_down_passes(settings) -> None:
    """Move every recorded failure back by the cool-down: django-axes only counts failures newer than that."""
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - settings.AXES_COOLOFF_TIME - timedelta(seconds=1))


def token_post(client, username: str, password: str, **extra):
    return client.post(reverse("api-token"), {"username": username, "password": password}, format="json", **extra)


def test_the_defaults_are_five_failures_and_fifteen_minutes(settings):
    assert settings.AXES_FAILURE_LIMIT == 5 and settings.AXES_COOLOFF_TIME == timedelta(minutes=15)
    assert settings.AXES_LOCKOUT_PARAMETERS == ["username", "ip_address"]


def test_token_endpoint_locks_then_lets_in_after_the_cool_down(reviewer, settings):
    api, limit = APIClient(), settings.AXES_FAILURE_LIMIT
    answers = [token_post(api, reviewer.username, "wrong").status_code for _ in range(limit)]
    assert answers == [400] * (limit - 1) + [429]

    locked = token_post(api, reviewer.username, PASSWORD)
    assert locked.status_code == 429
    body = error_body(locked)
    assert body["code"] == "login_locked" and "15 minutes" in body["detail"]
    assert not AuthToken.objects.filter(user=reviewer).exists()

    cool_down_passes(settings)
    answer = token_post(api, reviewer.username, PASSWORD)
    assert answer.status_code == 200 and answer.json()["token"]


def test_a_wrong_password_is_a_400_in_the_one_error_shape(reviewer):
    answer = token_post(APIClient(), reviewer.username, "wrong")
    assert answer.status_code == 400 and error_body(answer)["code"] == "invalid_credentials"


def test_login_form_locks_with_a_plain_page_then_lets_in_after_the_cool_down(client, reviewer, settings):
    url, limit = reverse("login"), settings.AXES_FAILURE_LIMIT
    for _ in range(limit - 1):
        page = client.post(url, {"username": reviewer.username, "password": "wrong"})
        assert page.status_code == 200 and b"didn't match" in page.content
    page = client.post(url, {"username": reviewer.username, "password": "wrong"})
    assert page.status_code == 429 and b"Too many failed logins" in page.content

    page = client.post(url, {"username": reviewer.username, "password": PASSWORD})
    assert page.status_code == 429 and b"Try again in 15 minutes" in page.content
    assert "_auth_user_id" not in client.session

    cool_down_passes(settings)
    page = client.post(url, {"username": reviewer.username, "password": PASSWORD})
    assert page.status_code == 302 and page["Location"] == reverse("home")


def test_admin_login_locks_then_lets_in_after_the_cool_down(client, admin_user, settings):
    url, limit = reverse("admin:login"), settings.AXES_FAILURE_LIMIT
    answers = [client.post(url, {"username": admin_user.username, "password": "wrong"}).status_code
               for _ in range(limit)]
    assert answers == [200] * (limit - 1) + [429]
    page = client.post(url, {"username": admin_user.username, "password": PASSWORD})
    assert page.status_code == 429 and b"Too many failed logins" in page.content
    assert client.get(reverse("admin:index")).status_code == 302  # not logged in

    cool_down_passes(settings)
    page = client.post(url, {"username": admin_user.username, "password": PASSWORD, "next": reverse("admin:index")})
    assert page.status_code == 302 and client.get(reverse("admin:index")).status_code == 200


def test_failures_count_across_entry_points(client, reviewer, settings):
    """One counter: failures on the form and on the API add up."""
    api = APIClient()
    for i in range(settings.AXES_FAILURE_LIMIT - 1):
        if i % 2:
            client.post(reverse("login"), {"username": reviewer.username, "password": "wrong"})
        else:
            token_post(api, reviewer.username, "wrong")
    assert token_post(api, reviewer.username, "wrong").status_code == 429
    assert client.post(reverse("login"), {"username": reviewer.username, "password": PASSWORD}).status_code == 429


def test_one_username_is_locked_from_every_address(reviewer, settings):
    api = APIClient()
    for i in range(settings.AXES_FAILURE_LIMIT):
        token_post(api, reviewer.username, "wrong", REMOTE_ADDR=f"192.0.2.{i + 1}")
    assert token_post(api, reviewer.username, PASSWORD, REMOTE_ADDR="198.51.100.77").status_code == 429
    other = UserFactory()
    assert token_post(api, other.username, PASSWORD, REMOTE_ADDR="198.51.100.77").status_code == 200


def test_one_address_is_locked_for_every_username(settings):
    api = APIClient()
    for i in range(settings.AXES_FAILURE_LIMIT):
        token_post(api, f"guess{i}", "wrong", REMOTE_ADDR="192.0.2.10")
    user = UserFactory()
    assert token_post(api, user.username, PASSWORD, REMOTE_ADDR="192.0.2.10").status_code == 429
    assert token_post(api, user.username, PASSWORD, REMOTE_ADDR="192.0.2.11").status_code == 200


NGINX = "172.18.0.5"


@pytest.fixture
def behind_nginx(settings):
    """nginx is the configured proxy (TRUSTED_PROXIES): from anyone else X-Forwarded-For is dropped
    (tests/core/test_trusted_proxy.py)."""
    settings.TRUSTED_PROXIES = (ipaddress.ip_network(f"{NGINX}/32"),)


def test_the_client_address_is_the_one_nginx_saw(behind_nginx, settings):
    """nginx appends the address it saw to X-Forwarded-For: that last entry is the client, whatever the client wrote
    before it."""
    api, user = APIClient(), UserFactory()
    for i in range(settings.AXES_FAILURE_LIMIT):
        token_post(api, f"guess{i}", "wrong", REMOTE_ADDR=NGINX, HTTP_X_FORWARDED_FOR="203.0.113.7")
    assert token_post(api, user.username, PASSWORD, REMOTE_ADDR=NGINX,
                      HTTP_X_FORWARDED_FOR="203.0.113.7").status_code == 429
    assert token_post(api, user.username, PASSWORD, REMOTE_ADDR=NGINX,
                      HTTP_X_FORWARDED_FOR="203.0.113.8").status_code == 200


def test_a_forged_chain_locks_out_only_its_sender(behind_nginx, settings):
    """Five failures with a junk multi-entry X-Forwarded-For lock out the address nginx saw (the last entry), never
    nginx itself: other clients behind the same nginx, with a chain of their own or none, still log in. Changing the
    forged part does not escape the count."""
    api, user = APIClient(), UserFactory()
    for i in range(settings.AXES_FAILURE_LIMIT):
        token_post(api, f"guess{i}", "wrong", REMOTE_ADDR=NGINX,
                   HTTP_X_FORWARDED_FOR=f"10.9.9.{i}, not-an-address, 198.51.100.{i + 1}, 203.0.113.9")
    assert token_post(api, user.username, PASSWORD, REMOTE_ADDR=NGINX,
                      HTTP_X_FORWARDED_FOR="198.51.100.99, 203.0.113.9").status_code == 429
    assert token_post(api, user.username, PASSWORD, REMOTE_ADDR=NGINX,
                      HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 429

    assert token_post(api, user.username, PASSWORD, REMOTE_ADDR=NGINX,
                      HTTP_X_FORWARDED_FOR="198.51.100.99, 203.0.113.10").status_code == 200  # behind a proxy
    assert token_post(api, user.username, PASSWORD, REMOTE_ADDR=NGINX,
                      HTTP_X_FORWARDED_FOR="203.0.113.11").status_code == 200
    assert AccessAttempt.objects.filter(ip_address=NGINX).count() == 0


def test_one_more_proxy_in_front_counts_one_entry_further_left(behind_nginx, settings):
    """LOGIN_PROXY_COUNT=1: a TLS load balancer appends the client, nginx appends the load balancer."""
    settings.LOGIN_PROXY_COUNT = 1
    api, user = APIClient(), UserFactory()
    for i in range(settings.AXES_FAILURE_LIMIT):
        token_post(api, f"guess{i}", "wrong", REMOTE_ADDR=NGINX,
                   HTTP_X_FORWARDED_FOR=f"10.9.9.{i}, 203.0.113.20, 192.0.2.250")
    assert token_post(api, user.username, PASSWORD, REMOTE_ADDR=NGINX,
                      HTTP_X_FORWARDED_FOR="203.0.113.20, 192.0.2.250").status_code == 429
    assert token_post(api, user.username, PASSWORD, REMOTE_ADDR=NGINX,
                      HTTP_X_FORWARDED_FOR="203.0.113.21, 192.0.2.250").status_code == 200


def test_without_a_trusted_proxy_the_connection_is_the_client(settings):
    """A client that reaches gunicorn directly cannot pick its address with a header."""
    api, user = APIClient(), UserFactory()
    for i in range(settings.AXES_FAILURE_LIMIT):
        token_post(api, f"guess{i}", "wrong", REMOTE_ADDR="203.0.113.30", HTTP_X_FORWARDED_FOR=f"198.51.100.{i}")
    assert token_post(api, user.username, PASSWORD, REMOTE_ADDR="203.0.113.30",
                      HTTP_X_FORWARDED_FOR="198.51.100.200").status_code == 429
