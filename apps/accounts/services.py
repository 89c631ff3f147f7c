"""Writes for users and roles."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group
from django.contrib.auth.password_validation import validate_password
from django.db import transaction

from .roles import Role


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
