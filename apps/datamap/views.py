"""The data map page (researchers and admins): a scatter of one split's faces for one version, drawn by
``static/datamap/map.js`` from the API."""

from __future__ import annotations

from django.views.generic import TemplateView

from apps.accounts.roles import Role, RoleRequiredMixin
from apps.faces.models import Split
from apps.faces.selectors import face_splits_visible_to
from apps.gallery.params import model_version_param, split_param
from apps.inference.selectors import model_version_list
from apps.review.models import ReviewItem
from ml.embedding import DEFAULT_METHOD

from .models import METHOD_CHOICES
from .selectors import data_map_state
from .services import data_map_method_validate


class DataMapView(RoleRequiredMixin, TemplateView):
    required_roles = (Role.RESEARCHER,)
    template_name = "datamap/map.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        query = self.request.GET
        splits = face_splits_visible_to(self.request.user)
        version = model_version_param(query.get("version"))
        split = split_param(query.get("split"), splits=splits, default=Split.PUBLIC_TEST.value)
        method = data_map_method_validate(query.get("method") or DEFAULT_METHOD)
        context.update(version=version, split=split, method=method, splits=splits, methods=METHOD_CHOICES,
                       versions=model_version_list(),
                       review_statuses=[value for value, _ in ReviewItem.Status.choices])
        if version is not None:
            context["state"] = data_map_state(user=self.request.user, version=version, split=split, method=method)
        return context
