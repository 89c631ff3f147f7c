from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from rest_framework.test import APIClient

from apps.accounts.roles import Role, user_has_role, user_roles

from .factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def test_role_groups_exist_from_the_data_migration():
    assert set(Group.objects.values_list("name", flat=True)) >= {"reviewer", "researcher", "admin"}


def test_roles_and_what_admin_implies(reviewer, researcher, admin_user):
    assert user_roles(reviewer) == {Role.REVIEWER}
    assert user_has_role(researcher, Role.RESEARCHER) and not user_has_role(researcher, Role.REVIEWER)
    assert user_roles(admin_user) == set(Role)
    assert not user_has_role(UserFactory(), Role.REVIEWER)
    assert not user_has_role(UserFactory(roles=[Role.ADMIN], is_active=False), Role.ADMIN)


@pytest.mark.parametrize("name", ["home", "user-list"])
def test_anonymous_users_are_sent_to_login(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_reviewer_cannot_reach_admin_only_pages(client, reviewer):
    client.force_login(reviewer)
    assert client.get(reverse("home")).status_code == 200
    assert client.get(reverse("user-list")).status_code == 403
    admin_index = client.get(reverse("admin:index"))
    assert admin_index.status_code == 302 and reverse("admin:login") in admin_index["Location"]


def test_admin_reaches_admin_pages(client, admin_user):
    client.force_login(admin_user)
    page = client.get(reverse("user-list"))
    assert page.status_code == 200 and b"ada-admin" in page.content
    assert client.get(reverse("admin:index")).status_code == 200


def test_api_refuses_anonymous_and_reviewers_on_admin_endpoints(reviewer, admin_user):
    api = APIClient()
    assert api.get(reverse("api-me")).status_code == 401
    api.force_authenticate(reviewer)
    assert api.get(reverse("api-me")).json()["roles"] == ["reviewer"]
    assert api.get(reverse("api-users")).status_code == 403
    api.force_authenticate(admin_user)
    users = api.get(reverse("api-users")).json()["results"]
    assert {u["username"] for u in users} == {"rita-reviewer", "ada-admin"}


def test_token_obtained_with_password_authenticates(reviewer):
    api = APIClient()
    token = api.post(reverse("api-token"), {"username": reviewer.username, "password": PASSWORD}).json()["token"]
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get(reverse("api-me")).json()["username"] == reviewer.username
    assert api.post(reverse("api-token"), {"username": reviewer.username, "password": "wrong"}).status_code == 400


def test_session_login_through_the_login_form(client, reviewer):
    response = client.post(reverse("login"), {"username": reviewer.username, "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("home")
    assert client.get(reverse("home")).status_code == 200
