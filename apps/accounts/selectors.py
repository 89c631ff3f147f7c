"""Reads for users, roles and API tokens."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group
from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from knox.models import AuthToken

from apps.core.errors import NotFound

from .roles import Role, user_has_role


def users_per_role() -> dict[str, int]:
    """Active users holding each role directly (superusers count as admins), plus ``total``."""
    user_model = get_user_model()
    active = user_model.objects.filter(is_active=True)
    per_group = dict(
        Group.objects.filter(name__in=[role.value for role in Role])
        .annotate(n=Count("user", filter=Q(user__is_active=True)))
        .values_list("name", "n")
    )
    counts = {role.value: int(per_group.get(role.value, 0)) for role in Role}
    counts[Role.ADMIN.value] = active.filter(Q(groups__name=Role.ADMIN.value) | Q(is_superuser=True)).distinct().count()
    counts["total"] = active.count()
    return counts


def user_list_with_roles() -> QuerySet:
    return get_user_model().objects.order_by("username").prefetch_related("groups")


def user_get(*, pk: int) -> AbstractUser:
    """User ``pk``; ``NotFound`` when there is none."""
    user = get_user_model().objects.filter(pk=pk).first()
    if user is None:
        raise NotFound(f"no user {pk}")
    return user


def _live_tokens() -> QuerySet[AuthToken]:
    """Tokens that still authenticate: not expired (knox deletes expired ones when they are next presented)."""
    return (AuthToken.objects.filter(Q(expiry__isnull=True) | Q(expiry__gt=timezone.now()))
            .select_related("user").order_by("-created"))


def api_tokens_of(user: AbstractUser) -> QuerySet[AuthToken]:
    """``user``'s live API tokens, newest first."""
    return _live_tokens().filter(user=user)


def api_tokens_visible_to(viewer: AbstractUser) -> QuerySet[AuthToken]:
    """The live tokens ``viewer`` may list and revoke: their own, or everyone's for an admin."""
    if user_has_role(viewer, Role.ADMIN):
        return _live_tokens()
    return api_tokens_of(viewer)
