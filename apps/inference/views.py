from __future__ import annotations

from django.views.generic import TemplateView

from apps.accounts.roles import Role, RoleRequiredMixin

from .status import platform_status


class StatusView(RoleRequiredMixin, TemplateView):
    """Admins: queues and jobs by kind (what is stuck, what the sweeper will do), workers, services, the active
    model. The page carries the status as JSON and ``static/inference/status.js`` draws it, then polls the API."""

    required_roles = (Role.ADMIN,)
    template_name = "inference/status.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["status"] = platform_status()
        return context
