"""Admin for the review queue. Items, votes and the label history are read-only here: a label or an item's state
changes only through the review services (the actions below call them), so every change writes its LabelHistory row
and an undo cannot overwrite it (``review_vote_undo`` refuses a vote whose item an admin decided or reopened)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.urls import reverse
from django.utils.html import format_html

from apps.core.errors import ApplicationError
from apps.faces.admin import FaceImageAdmin
from apps.faces.models import FaceImage

from .choices import UNSURE, Choice
from .models import LabelHistory, ReviewItem, ScoringRun, Vote, VoteUndo
from .services import review_item_reopen, review_item_settle_admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows that only the review services write: viewable, never added, changed or deleted by hand."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ScoringRun)
class ScoringRunAdmin(admin.ModelAdmin):
    list_display = ["id", "status", "folds", "epochs", "ranking", "scored_count", "issue_count", "outliers",
                    "created_at"]
    readonly_fields = ["progress", "error", "started_at", "finished_at", "outlier_report"]


class DecideActionForm(ActionForm):
    choice = forms.TypedChoiceField(
        label="label", required=False, coerce=int, empty_value=None,
        choices=[("", "---------"), *((value, name) for value, name in Choice.choices if value != UNSURE)])


@admin.register(ReviewItem)
class ReviewItemAdmin(ReadOnlyAdmin):
    list_display = ["id", "face", "kind", "status", "priority", "suggested_label", "is_gold", "settled_label",
                    "round"]
    list_filter = ["kind", "status", "is_gold"]
    raw_id_fields = ["face", "score", "lease_holder", "settled_by_admin"]
    action_form = DecideActionForm
    actions = ["decide_selected", "reopen_selected"]

    @admin.action(description="Decide the selected items as the chosen label")
    def decide_selected(self, request, queryset) -> None:
        try:
            choice = DecideActionForm.base_fields["choice"].clean(request.POST.get("choice", ""))
        except ValidationError:
            choice = None
        if choice is None:
            self.message_user(request, "Choose the label to decide as, next to the action.", messages.ERROR)
            return
        done = self._each(request, queryset, lambda item: review_item_settle_admin(
            admin=request.user, item_id=item.pk, choice=choice))
        if done:
            self.message_user(request, f"{done} item(s) decided as {Choice(choice).label}.", messages.SUCCESS)

    @admin.action(description="Reopen the selected items (a new round)")
    def reopen_selected(self, request, queryset) -> None:
        done = self._each(request, queryset, lambda item: review_item_reopen(admin=request.user, item_id=item.pk))
        if done:
            self.message_user(request, f"{done} item(s) reopened.", messages.SUCCESS)

    def _each(self, request, queryset, service) -> int:
        """Call ``service`` on each item in its own transaction; a refusal is reported and the others go on."""
        done = 0
        for item in queryset.order_by("pk"):
            try:
                service(item)
            except ApplicationError as exc:
                self.message_user(request, f"item {item.pk}: {exc.detail}", messages.ERROR)
            else:
                done += 1
        return done


@admin.register(Vote)
class VoteAdmin(ReadOnlyAdmin):
    list_display = ["id", "item", "reviewer", "round", "choice", "created_at"]
    raw_id_fields = ["item"]


@admin.register(VoteUndo)
class VoteUndoAdmin(ReadOnlyAdmin):
    list_display = ["id", "item", "reviewer", "round", "choice", "created_at"]
    raw_id_fields = ["item"]


@admin.register(LabelHistory)
class LabelHistoryAdmin(ReadOnlyAdmin):
    list_display = ["id", "face", "kind", "old_label", "new_label", "new_excluded", "actor", "created_at"]
    list_filter = ["kind"]
    raw_id_fields = ["face", "item"]


# The face admin lives in apps.faces; extend it here (as apps.inference extends the dataset admin) so that faces does
# not depend on review.
admin.site.unregister(FaceImage)


@admin.register(FaceImage)
class FaceImageWithReviewAdmin(FaceImageAdmin):
    readonly_fields = (*FaceImageAdmin.readonly_fields, "review_item_link")

    @admin.display(description="review item")
    def review_item_link(self, obj: FaceImage) -> str:
        try:
            item = obj.review_item
        except ObjectDoesNotExist:
            return "- (none: this face's label cannot be changed here)"
        url = reverse("admin:review_reviewitem_change", args=[item.pk])
        return format_html('<a href="{}">{}</a>: decide or reopen it to change the label', url, item)
