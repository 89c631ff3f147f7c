"""Server-rendered pages: the keyboard-first review screen (its data comes from the API) and the reviewers' page."""

from __future__ import annotations

from django.conf import settings
from django.views.generic import TemplateView

from apps.accounts.roles import Role, RoleRequiredMixin, user_has_role

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
        context["last_scoring_run"] = review_queue_stats(user=self.request.user)["last_scoring_run"]
        return context


class ReviewersView(RoleRequiredMixin, TemplateView):
    """Agreement and queue figures, blind as the API's: admins see every reviewer and the gold figures, a reviewer
    their own row without them."""

    required_roles = (Role.REVIEWER,)
    template_name = "review/reviewers.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["agreement"] = review_agreement(user=self.request.user)
        context["stats"] = review_queue_stats(user=self.request.user)
        context["is_admin"] = user_has_role(self.request.user, Role.ADMIN)
        return context
