"""Writes for users, roles and API tokens."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import AbstractUser, Group
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.signals import user_logged_in
from django.db import transaction
from django.http import HttpRequest
from knox.models import AuthToken
from rest_framework import status
from rest_framework.request import Request

from apps.core.errors import ApplicationError, InvalidInput, NotFound

from .roles import Role, role_cache_clear
from .selectors import api_tokens_visible_to


class LoginLocked(ApplicationError):
    """Too many failed logins for this username or from this address (django-axes): refused until the cool-down."""

    status, code = status.HTTP_429_TOO_MANY_REQUESTS, "login_locked"


class InvalidCredentials(InvalidInput):
    code = "invalid_credentials"


def login_locked_message() -> str:
    """What a locked-out client is told, by the API and by the login pages alike."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return (f"Too many failed logins for this account or from this address. Try again in {minutes} minutes "
            "(counted from the last failed attempt).")


def password_generate() -> str:
    return secrets.token_urlsafe(18)


@transaction.atomic
def user_create(
    *, username: str, role: Role | str, password: str, email: str = "", validate: bool = True
) -> AbstractUser:
    """Create a user holding ``role``. Admins also get Django-admin access (staff and superuser)."""
    role = Role(role)
    user_model = get_user_model()
    user = user_model(username=username, email=email)
    if validate:
        validate_password(password, user=user)
    user.set_password(password)
    if role is Role.ADMIN:
        user.is_staff = True
        user.is_superuser = True
    user.full_clean()
    user.save()
    user_role_set(user=user, role=role)
    return user


def user_role_set(*, user: AbstractUser, role: Role | str) -> None:
    """Add ``role`` to the user (other roles stay)."""
    group, _ = Group.objects.get_or_create(name=Role(role).value)
    user.groups.add(group)
    role_cache_clear(user)


def api_token_create(*, user: AbstractUser, ttl: timedelta | None = None) -> tuple[AuthToken, str]:
    """A new API token for ``user``: the row (which keeps only a digest) and the secret, which nothing can show again.
    It expires after ``ttl`` (default ``REST_KNOX["TOKEN_TTL"]``)."""
    if ttl is None:
        return AuthToken.objects.create(user=user)
    return AuthToken.objects.create(user=user, expiry=ttl)


def api_token_obtain(*, request: Request | HttpRequest, username: str, password: str) -> tuple[AuthToken, str]:
    """Exchange a username and password for a new API token.

    The password is checked through ``django.contrib.auth.authenticate`` with the request, as the login form and the
    admin login check theirs, so django-axes counts this endpoint's failures in the same places and refuses a locked
    username or address here too (even with the right password) until the cool-down has passed.
    """
    user = authenticate(request=request, username=username, password=password)
    if user is None:
        if getattr(request, "axes_locked_out", False):  # set by django-axes when it refused or just locked
            raise LoginLocked(login_locked_message())
        raise InvalidCredentials("Unable to log in with the username and password given.")
    token, secret = api_token_create(user=user)
    # As a login does: last_login, and django-axes' access log.
    user_logged_in.send(sender=type(user), request=request, user=user)
    return token, secret


def api_token_revoke(*, by: AbstractUser, key: str) -> int:
    """Revoke the token whose id (``token_key``) is ``key``, if ``by`` may see it: its owner, or an admin. Anyone
    else gets 404, as for a token that does not exist."""
    count, _ = api_tokens_visible_to(by).filter(token_key=key).delete()
    if not count:
        raise NotFound(f"no token {key}")
    return count


def api_tokens_revoke_all(*, user: AbstractUser) -> int:
    """Revoke every API token of ``user`` (the one in use included); the number revoked."""
    count, _ = AuthToken.objects.filter(user=user).delete()
    return count
