from __future__ import annotations

from rest_framework import serializers

from ml.recipes import RECIPES

from .models import TrainingRun
from .services import MAX_SEED


class TrainingRunInputSerializer(serializers.Serializer):
    recipe = serializers.ChoiceField(choices=sorted(RECIPES), default="default")
    epochs = serializers.IntegerField(min_value=1, max_value=500, required=False, allow_null=True, default=None,
                                      help_text="Empty: the recipe's.")
    seed = serializers.IntegerField(default=0, min_value=0, max_value=MAX_SEED)
    soft_label_mode = serializers.ChoiceField(choices=TrainingRun.SoftLabelMode.choices, default="majority")
    exclude_cross_split_duplicates = serializers.BooleanField(
        default=False, help_text="Leave out Training faces with a near-duplicate in a test split (latest search).")


class TrainingRunSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True,
                                              help_text="Who started it; null for automatic runs.")
    model_version_name = serializers.CharField(source="model_version.name", read_only=True, allow_null=True,
                                               default=None)
    model_version_status = serializers.CharField(source="model_version.status", read_only=True, allow_null=True,
                                                 default=None)
    # The API's names from before the one job model: the epochs are the run's history, the latest event its progress.
    progress = serializers.JSONField(source="history", read_only=True, help_text="One entry per finished epoch.")
    current = serializers.JSONField(source="progress", read_only=True,
                                    help_text="The latest progress event (batch or epoch).")

    class Meta:
        model = TrainingRun
        fields = ["id", "trigger", "created_by", "status", "recipe_name", "arch", "epochs", "seed", "soft_label_mode",
                  "recipe", "snapshot_count", "snapshot_fingerprint", "labels_changed", "soft_label_count",
                  "exclude_cross_split_duplicates", "duplicates_left_out", "near_duplicate_run",
                  "cancel_requested", "progress", "current", "log", "error", "worker", "created_at", "started_at",
                  "heartbeat_at", "finished_at", "model_version", "model_version_name", "model_version_status",
                  "metrics", "promoted", "promotion_reason"]
        read_only_fields = fields


class TrainingRunListItemSerializer(TrainingRunSerializer):
    """A run in the list (which the training page polls every few seconds): its log is cut to the end."""

    LOG_TAIL = 4000  # characters

    log = serializers.SerializerMethodField(help_text="The last 4,000 characters of the log (the whole log: "
                                                      "GET /api/training-runs/{id}/).")

    def get_log(self, run: TrainingRun) -> str:
        return run.log[-self.LOG_TAIL:]


class ModelVersionComparisonSerializer(serializers.Serializer):
    """One version with its PublicTest figures (current and original labels) and the change from the one before."""

    id = serializers.IntegerField(source="version.pk")
    name = serializers.CharField(source="version.name")
    status = serializers.CharField(source="version.status", help_text="ready, active, archived or rejected")
    arch = serializers.CharField(source="version.arch")
    created_at = serializers.DateTimeField(source="version.created_at")
    activated_at = serializers.DateTimeField(source="version.activated_at", allow_null=True)
    current = serializers.JSONField(help_text="PublicTest vs current (corrected) labels: accuracy, macro_f1.")
    original = serializers.JSONField(help_text="PublicTest vs original labels: accuracy, macro_f1.")
    delta_previous = serializers.JSONField(help_text="Change vs the previous version (current labels).")
    confusion = serializers.JSONField(help_text="7x7 confusion matrix on PublicTest (current labels).")
    training_run = serializers.IntegerField(allow_null=True)
    soft_label_mode = serializers.CharField(allow_null=True)
    gate = serializers.CharField(help_text="The promotion gate's reason, for versions a run produced.")

