"""Server-rendered pages: the keyboard-first review screen (its data comes from the API) and the reviewers' page."""

from __future__ import annotations

from django.conf import settings
from django.views.generic import TemplateView

from apps.accounts.roles import Role, RoleRequiredMixin

from .choices import Choice
from .selectors import review_agreement, review_progress_for, review_queue_stats


class ReviewView(RoleRequiredMixin, TemplateView):
    required_roles = (Role.REVIEWER,)
    template_name = "review/review.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["choices"] = [(c.value, c.label) for c in Choice]
        context["progress"] = review_progress_for(user=self.request.user)
        context["prefetch"] = settings.REVIEW_PREFETCH
        context["last_scoring_run"] = review_queue_stats()["last_scoring_run"]
        return context


class ReviewersView(RoleRequiredMixin, TemplateView):
    required_roles = (Role.REVIEWER,)
    template_name = "review/reviewers.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["agreement"] = review_agreement()
        context["stats"] = review_queue_stats()
        return context
