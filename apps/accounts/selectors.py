"""Reads for users and roles."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Count, Q, QuerySet

from .roles import Role


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
