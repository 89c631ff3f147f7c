from __future__ import annotations

from django.contrib import admin

from .models import LabelHistory, ReviewItem, ScoringRun, Vote


@admin.register(ScoringRun)
class ScoringRunAdmin(admin.ModelAdmin):
    list_display = ["id", "status", "folds", "epochs", "ranking", "scored_count", "issue_count", "created_at"]
    readonly_fields = ["progress", "error", "started_at", "finished_at"]


@admin.register(ReviewItem)
class ReviewItemAdmin(admin.ModelAdmin):
    list_display = ["id", "face", "status", "priority", "suggested_label", "is_gold", "settled_label", "round"]
    list_filter = ["status", "is_gold"]
    raw_id_fields = ["face", "score", "lease_holder", "settled_by_admin"]


@admin.register(Vote)
class VoteAdmin(admin.ModelAdmin):
    list_display = ["id", "item", "reviewer", "round", "choice", "created_at"]
    raw_id_fields = ["item"]


@admin.register(LabelHistory)
class LabelHistoryAdmin(admin.ModelAdmin):
    list_display = ["id", "face", "kind", "old_label", "new_label", "new_excluded", "actor", "created_at"]
    list_filter = ["kind"]
    raw_id_fields = ["face", "item"]
