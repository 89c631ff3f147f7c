from __future__ import annotations

from django.views.generic import TemplateView

from apps.accounts.roles import Role, RoleRequiredMixin

from .status import platform_status


class StatusView(RoleRequiredMixin, TemplateView):
    """Admins: workers, queues, active model, database and broker health."""

    required_roles = (Role.ADMIN,)
    template_name = "inference/status.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["status"] = platform_status()
        return context
