"""Roles (reviewer, researcher, admin) and the checks other apps reuse.

A role is a ``Group`` of the same name, created by a data migration. The admin role implies the other two,
and superusers hold every role, so an admin can do whatever a reviewer or researcher can.

Reuse:
- views: ``class MyView(RoleRequiredMixin, View): required_roles = (Role.REVIEWER,)``
- DRF: ``permission_classes = [IsReviewer]`` (or ``IsResearcher``, ``IsAdminRole``)
- code: ``user_has_role(request.user, Role.RESEARCHER)``
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission


class Role(StrEnum):
    REVIEWER = "reviewer"
    RESEARCHER = "researcher"
    ADMIN = "admin"


# Which roles each role grants (itself included).
ROLE_GRANTS: dict[Role, frozenset[Role]] = {
    Role.REVIEWER: frozenset({Role.REVIEWER}),
    Role.RESEARCHER: frozenset({Role.RESEARCHER}),
    Role.ADMIN: frozenset({Role.ADMIN, Role.RESEARCHER, Role.REVIEWER}),
}


def user_roles(user: Any) -> frozenset[Role]:
    """Every role the user holds, directly or implied."""
    if user is None or not user.is_authenticated or not user.is_active:
        return frozenset()
    if user.is_superuser:
        return frozenset(Role)
    # Kept on the instance, like Django's own permission cache: one query per request (the auth middleware loads a
    # fresh user each request), however many checks the request makes. ``role_cache_clear`` after a role change.
    cached = getattr(user, "_ferplatform_roles", None)
    if cached is not None:
        return cached
    names = {name for name in user.groups.values_list("name", flat=True)}
    held: set[Role] = set()
    for role in Role:
        if role.value in names:
            held |= ROLE_GRANTS[role]
    user._ferplatform_roles = frozenset(held)
    return user._ferplatform_roles


def role_cache_clear(user: Any) -> None:
    """Forget the roles kept on this user object (after its groups changed)."""
    user.__dict__.pop("_ferplatform_roles", None)


def user_has_role(user: Any, *roles: Role | str) -> bool:
    """True when the user holds at least one of ``roles``."""
    wanted = {Role(role) for role in roles}
    return bool(wanted & user_roles(user))


class HasRole(BasePermission):
    """DRF permission: the user must hold one of ``required_roles``. Subclass and set it."""

    required_roles: tuple[Role, ...] = ()
    message = "Your role does not allow this."

    def has_permission(self, request: Any, view: Any) -> bool:
        return user_has_role(request.user, *self.required_roles)


class IsReviewer(HasRole):
    required_roles = (Role.REVIEWER,)


class IsResearcher(HasRole):
    required_roles = (Role.RESEARCHER,)


class IsAdminRole(HasRole):
    required_roles = (Role.ADMIN,)


class RoleRequiredMixin(LoginRequiredMixin):
    """View mixin: anonymous users go to the login page; logged-in users without a role get 403."""

    required_roles: tuple[Role, ...] = ()

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        if self.required_roles and not user_has_role(request.user, *self.required_roles):
            raise PermissionDenied("Your role does not allow this page.")
        return super().dispatch(request, *args, **kwargs)
