"""Server-rendered pages: the keyboard-first review screen (its data comes from the API) and the reviewers' page."""

from __future__ import annotations

from django.conf import settings
from django.views.generic import TemplateView

from apps.accounts.roles import Role, RoleRequiredMixin, user_has_role
from apps.inference.selectors import model_version_active

from .choices import Choice
from .models import ScoringRun
from .scoring import REFINE_METHOD
from .selectors import review_agreement, review_progress_for, review_queue_source, review_queue_stats


class ReviewView(RoleRequiredMixin, TemplateView):
    required_roles = (Role.REVIEWER,)
    template_name = "review/review.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["choices"] = [(c.value, c.label) for c in Choice]
        context["progress"] = review_progress_for(user=self.request.user)
        context["prefetch"] = settings.REVIEW_PREFETCH
        stats = review_queue_stats(user=self.request.user)
        context["last_scoring_run"] = stats["last_scoring_run"]
        context["queue_run"], context["refining_run"] = stats["queue_run"], stats["refining_run"]
        context["is_admin"] = user_has_role(self.request.user, Role.ADMIN)
        return context


class GridReviewView(RoleRequiredMixin, TemplateView):
    """Grid review: a page of faces sharing a label, the ones that do not belong marked (its data comes from the
    API, ``apps.review.grid_api``)."""

    required_roles = (Role.REVIEWER,)
    template_name = "review/grid.html"

    def get_context_data(self, **kwargs):
        from .grid import GRID_SIZE_DEFAULT

        context = super().get_context_data(**kwargs)
        context["choices"] = [(c.value, c.label) for c in Choice]
        context["progress"] = review_progress_for(user=self.request.user)
        context["grid_size"] = GRID_SIZE_DEFAULT
        return context


class ScoringView(RoleRequiredMixin, TemplateView):
    """Admins: start, watch (per fold and epoch, with an ETA), cancel and resume scoring runs (polling the API)."""

    required_roles = (Role.ADMIN,)
    template_name = "review/scoring.html"

    def get_context_data(self, **kwargs):
        from ml.scoring import DEFAULT_RANKING, FILTER_METHODS, RANKING_METHODS

        from .scoring import OUTLIERS_MAX

        context = super().get_context_data(**kwargs)
        context["methods"] = ScoringRun.Method.choices
        context["outliers_max"] = OUTLIERS_MAX
        context["rankings"], context["filters"] = RANKING_METHODS, FILTER_METHODS
        context["default_ranking"] = DEFAULT_RANKING
        context["refine_method"] = REFINE_METHOD
        context["active_version"] = model_version_active()
        context["source"] = review_queue_source()
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
