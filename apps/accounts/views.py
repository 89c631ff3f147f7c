from __future__ import annotations

from django.views.generic import TemplateView

from .roles import Role, RoleRequiredMixin, user_roles
from .selectors import user_list_with_roles


class UserListView(RoleRequiredMixin, TemplateView):
    """Admin-only overview of users and their roles (editing happens in the Django admin)."""

    required_roles = (Role.ADMIN,)
    template_name = "accounts/user_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["rows"] = [
            (user, sorted(role.value for role in user_roles(user))) for user in user_list_with_roles()
        ]
        return context
