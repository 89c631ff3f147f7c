from __future__ import annotations

from django.conf import settings
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import HttpRequest, HttpResponse
from django.views.generic import TemplateView
from django.views.static import serve

from apps.accounts.roles import Role, user_has_role
from apps.accounts.selectors import users_per_role
from apps.faces.selectors import face_counts_by_split_and_label


class HomeView(LoginRequiredMixin, TemplateView):
    """What the platform holds: images per split and label, users per role, links to the parts that exist."""

    template_name = "core/home.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["faces"] = face_counts_by_split_and_label()
        context["users"] = users_per_role()
        context["is_admin"] = user_has_role(self.request.user, Role.ADMIN)
        context["is_researcher"] = user_has_role(self.request.user, Role.RESEARCHER)
        return context


def media_serve(request: HttpRequest, path: str) -> HttpResponse:
    """Serve stored media when no nginx is in front (``SERVE_MEDIA``); reads MEDIA_ROOT per request."""
    return serve(request, path, document_root=settings.MEDIA_ROOT)
