from __future__ import annotations

from django.contrib import admin

from .models import FaithfulnessScore


@admin.register(FaithfulnessScore)
class FaithfulnessScoreAdmin(admin.ModelAdmin):
    list_display = ["model_version", "method", "metric", "split", "mean", "std", "sample_size", "created_at"]
    list_filter = ["metric", "method", "split"]
    readonly_fields = [f.name for f in FaithfulnessScore._meta.fields]
