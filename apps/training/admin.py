from __future__ import annotations

from django.contrib import admin

from .models import TrainingRun, TrainingSettings


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ["id", "status", "trigger", "recipe_name", "epochs", "soft_label_mode", "labels_changed",
                    "model_version", "promoted", "created_at"]
    list_filter = ["status", "trigger"]
    exclude = ["snapshot_labels"]
    readonly_fields = [f.name for f in TrainingRun._meta.fields if f.name != "snapshot_labels"]

    def has_add_permission(self, request) -> bool:
        return False  # runs start from the training page or the API


@admin.register(TrainingSettings)
class TrainingSettingsAdmin(admin.ModelAdmin):
    """The periodic check's threshold and what it trains; its schedule is the PeriodicTask "training: periodic
    check" (Periodic tasks in this admin)."""

    list_display = ["__str__", "auto_enabled", "auto_min_changed", "auto_recipe", "auto_epochs"]

    def has_add_permission(self, request) -> bool:
        return not TrainingSettings.objects.exists()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
