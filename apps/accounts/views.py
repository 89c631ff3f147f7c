from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.generic import TemplateView

from .roles import Role, RoleRequiredMixin, user_roles
from .selectors import user_list_with_roles
from .services import LoginLocked, login_locked_message


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


def login_locked_out(request: HttpRequest, response: HttpResponse | None = None,
                     credentials: dict | None = None) -> HttpResponse:
    """``AXES_LOCKOUT_CALLABLE``: what the login form and the admin login answer while django-axes locks the username
    or the address, a plain page with the API's message (the API raises ``LoginLocked`` itself)."""
    return render(request, "registration/locked_out.html", {"detail": login_locked_message()},
                  status=LoginLocked.status)
