from __future__ import annotations

from django.views.generic import TemplateView

from apps.accounts.roles import Role, RoleRequiredMixin
from ml.recipes import RECIPES

from .models import TrainingRun
from .selectors import training_overview


class TrainingView(RoleRequiredMixin, TemplateView):
    """Admins: retrain now, runs with live progress and curves (polling the API), versions before and after."""

    required_roles = (Role.ADMIN,)
    template_name = "training/training.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["overview"] = training_overview()
        context["recipes"] = [(name, RECIPES[name].description, RECIPES[name].epochs, RECIPES[name].warm_start)
                              for name in sorted(RECIPES)]
        # Warm start is the quick choice once a version is active; a full retrain from scratch stays one click away.
        context["recipe_selected"] = "finetune" if context["overview"]["active_version"] is not None else "default"
        context["soft_label_modes"] = TrainingRun.SoftLabelMode.choices
        return context
