from __future__ import annotations

from django.views.generic import TemplateView

from apps.accounts.roles import Role, RoleRequiredMixin, user_has_role
from apps.core.errors import InvalidInput
from ml.labels import CLASSES

from .selectors import near_duplicates_overview
from .serializers import NearDuplicateQuerySerializer


class NearDuplicatesView(RoleRequiredMixin, TemplateView):
    """Researchers: groups of near-duplicate faces with their labels and splits, filtered by the query string;
    admins also start a search from here."""

    required_roles = (Role.RESEARCHER,)
    template_name = "faces/near_duplicates.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        query = NearDuplicateQuerySerializer(data=self.request.GET)
        if not query.is_valid():
            raise InvalidInput("; ".join(f"{field}: {' '.join(map(str, errors))}"
                                         for field, errors in query.errors.items()))
        filters = query.validated_data
        overview = near_duplicates_overview(user=self.request.user, **filters)
        for group in overview["groups"]:
            for member in group.members:
                object.__setattr__(member, "label_name", _name(member.label))
                object.__setattr__(member, "current_name", _name(member.current_label))
        following = filters["offset"] + filters["limit"]
        context.update(overview=overview, filters=filters, can_start=user_has_role(self.request.user, Role.ADMIN),
                       next_offset=following if following < overview["total"] else None,
                       previous_offset=max(0, filters["offset"] - filters["limit"]) if filters["offset"] else None)
        return context


def _name(label: int | None) -> str:
    return CLASSES[label] if label is not None else "unlabelled"
