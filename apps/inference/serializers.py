from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ml.labels import CLASSES

from .models import Explanation, ModelVersion, Prediction
from .services.predictions import CAM_METHODS, DEFAULT_METHODS, TargetInvalid, target_label_validate
from .status import ALERT_CODES


class ModelVersionSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True,
                                              help_text="Who registered it; null for bootstrap and automatic runs.")

    class Meta:
        model = ModelVersion
        fields = ["id", "name", "arch", "status", "metrics", "config", "data_snapshot", "checkpoint_sha256",
                  "created_by", "created_at", "activated_at"]
        read_only_fields = fields


class ExplanationSerializer(serializers.ModelSerializer):
    target_class = serializers.SerializerMethodField()
    overlay_url = serializers.SerializerMethodField()

    class Meta:
        model = Explanation
        fields = ["id", "method", "target_label", "target_class", "overlay_url", "model_version", "created_at"]
        read_only_fields = fields

    def get_target_class(self, obj: Explanation) -> str:
        return CLASSES[obj.target_label]

    @extend_schema_field(OpenApiTypes.URI)
    def get_overlay_url(self, obj: Explanation) -> str:
        request = self.context.get("request")
        url = obj.overlay.url
        return request.build_absolute_uri(url) if request is not None else url


class PredictionSerializer(serializers.ModelSerializer):
    model_version = serializers.SerializerMethodField()
    probabilities = serializers.SerializerMethodField()
    predicted_class = serializers.SerializerMethodField()
    explanations = serializers.SerializerMethodField()

    class Meta:
        model = Prediction
        fields = ["face", "model_version", "probabilities", "predicted_label", "predicted_class", "confidence",
                  "created_at", "explanations"]
        read_only_fields = fields

    @extend_schema_field({"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}})
    def get_model_version(self, obj: Prediction) -> dict:
        return {"id": obj.model_version_id, "name": obj.model_version.name}

    @extend_schema_field({"type": "object", "additionalProperties": {"type": "number"},
                          "example": dict.fromkeys(CLASSES, 0.142857)})
    def get_probabilities(self, obj: Prediction) -> dict[str, float]:
        return dict(zip(CLASSES, obj.probabilities, strict=True))

    def get_predicted_class(self, obj: Prediction) -> str:
        return CLASSES[obj.predicted_label]

    @extend_schema_field(ExplanationSerializer(many=True))
    def get_explanations(self, obj: Prediction) -> list[dict]:
        rows = self.context.get("explanations", [])
        return ExplanationSerializer(rows, many=True, context=self.context).data


class ExplanationRequestSerializer(serializers.Serializer):
    method = serializers.ChoiceField(
        choices=CAM_METHODS, default=DEFAULT_METHODS[0],
        error_messages={"invalid_choice": f'unknown CAM method "{{input}}"; choose one of: {", ".join(CAM_METHODS)}'},
    )
    target = serializers.CharField(
        required=False, allow_null=True, default=None,
        help_text=f"Class to explain: 0-6 or one of {', '.join(CLASSES)}; omitted or null: the predicted class.",
    )

    def validate_target(self, value: str | None) -> int | None:
        if value in (None, "", "predicted"):
            return None
        try:
            return target_label_validate(value)
        except TargetInvalid as exc:
            raise serializers.ValidationError(exc.detail) from None


class ExplanationWaitSerializer(serializers.Serializer):
    wait = serializers.FloatField(
        required=False, min_value=0, default=0,
        help_text="Seconds to wait for a heatmap that is not stored yet (capped by "
                  "INFERENCE_EXPLAIN_MAX_WAIT_SECONDS); 0: answer at once.",
    )


class ExplanationPendingSerializer(serializers.Serializer):
    """The 202 answer: a worker makes the heatmap; ask again (the same request) to get it."""

    status = serializers.SerializerMethodField()
    detail = serializers.SerializerMethodField()
    poll = serializers.SerializerMethodField(help_text="Send the same request here again (with ?wait=SECONDS to "
                                                       "wait for the heatmap); it answers 200 once it is stored.")
    method = serializers.CharField()
    target_class = serializers.SerializerMethodField(help_text="Null: the predicted class, not predicted yet.")
    model_version = serializers.IntegerField(source="version.pk")

    @extend_schema_field({"type": "string", "enum": ["pending"]})
    def get_status(self, obj) -> str:
        return "pending"

    def get_detail(self, obj) -> str:
        return f"the {obj.method} heatmap is being made by a worker: send the same request again to get it"

    @extend_schema_field(OpenApiTypes.URI)
    def get_poll(self, obj) -> str:
        request = self.context.get("request")
        return request.build_absolute_uri(request.path) if request is not None else ""

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_target_class(self, obj) -> str | None:
        return None if obj.target_label is None else CLASSES[obj.target_label]


STATUS_LEVELS = ["ok", "amber", "red"]
STATUS_LEVEL_HELP = "red: nothing moves until someone acts; amber: slow, or the sweeper is about to repair it; ok."


class StatusAlertSerializer(serializers.Serializer):
    """One thing that looks stuck, said in a sentence (what the sweeper will do about it, where it will)."""

    level = serializers.ChoiceField(choices=STATUS_LEVELS, help_text="Never ok here. " + STATUS_LEVEL_HELP)
    code = serializers.ChoiceField(choices=ALERT_CODES)
    text = serializers.CharField()


class PlatformAlertSerializer(StatusAlertSerializer):
    where = serializers.CharField(help_text='"database", "broker", "sweeper", "queue <name>" or the label of a kind '
                                                  'of job.')


class StatusQueueSerializer(serializers.Serializer):
    queue = serializers.CharField()
    messages = serializers.IntegerField(allow_null=True, help_text="Waiting in the broker; null: the broker is down.")
    workers = serializers.ListField(child=serializers.CharField(), allow_null=True,
                                    help_text="Workers consuming this queue; null: unknown (the broker is down).")
    kinds = serializers.ListField(child=serializers.CharField(), help_text="Kinds of job routed to this queue.")
    queued = serializers.IntegerField(allow_null=True, help_text="Their queued rows; null: the database is down.")
    running = serializers.IntegerField(allow_null=True)
    oldest_queued_at = serializers.DateTimeField(allow_null=True, help_text="Creation of the oldest queued row.")
    oldest_queued_kind = serializers.CharField(allow_null=True)
    oldest_queued_id = serializers.IntegerField(allow_null=True)
    oldest_wait_s = serializers.FloatField(allow_null=True, help_text="How long the oldest queued row has waited.")
    oldest_wait = serializers.CharField(allow_null=True, help_text='The same, for people: "3 min 12 s".')
    level = serializers.ChoiceField(choices=STATUS_LEVELS, help_text=STATUS_LEVEL_HELP)
    alerts = StatusAlertSerializer(many=True)


class StatusFailureSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    at = serializers.DateTimeField(help_text="When it failed (its creation, if no end was recorded).")
    ago = serializers.CharField(help_text='"5 min 3 s ago".')
    error = serializers.CharField(help_text="The recorded error, cut at 300 characters.")
    admin_url = serializers.CharField(allow_null=True, help_text="The row in the Django admin; null: none there.")


class StatusKindSerializer(serializers.Serializer):
    kind = serializers.CharField(help_text='"prediction_chunk", "split_job", "scoring_run", "training_run", ...')
    label = serializers.CharField()
    queue = serializers.CharField()
    max_attempts = serializers.IntegerField()
    queued = serializers.IntegerField()
    running = serializers.IntegerField()
    failed = serializers.IntegerField()
    oldest_queued_at = serializers.DateTimeField(allow_null=True)
    oldest_queued_id = serializers.IntegerField(allow_null=True)
    oldest_wait_s = serializers.FloatField(allow_null=True)
    oldest_wait = serializers.CharField(allow_null=True)
    oldest_level = serializers.ChoiceField(choices=STATUS_LEVELS[:2], help_text="amber: it has waited longer than "
                                                                                "WORK_RESEND_AFTER.")
    never_sent = serializers.IntegerField(help_text="Queued rows whose message never reached the broker.")
    lost_running = serializers.IntegerField(help_text="Running rows with no heartbeat for WORK_HEARTBEAT_TIMEOUT: "
                                                      "the sweeper queues them again, or fails them.")
    lost_running_ids = serializers.ListField(child=serializers.IntegerField(), help_text="The first ten.")
    lost_running_final = serializers.IntegerField(help_text="Of those, the ones the sweeper will fail (no attempts "
                                                            "left).")
    resend_due = serializers.IntegerField(help_text="Queued rows the sweeper sends again on its next pass: waiting "
                                                    "longer than WORK_RESEND_AFTER with no message in the broker.")
    resend_due_ids = serializers.ListField(child=serializers.IntegerField(), help_text="The first ten.")
    message_missing = serializers.IntegerField(help_text="Of those, the ones sent before whose message is gone "
                                                         "from the broker (0 when the broker cannot be read).")
    latest_failures = StatusFailureSerializer(many=True, help_text="The last three failed rows, newest first.")
    level = serializers.ChoiceField(choices=STATUS_LEVELS, help_text=STATUS_LEVEL_HELP)
    alerts = StatusAlertSerializer(many=True)


class StatusThresholdsSerializer(serializers.Serializer):
    resend_after_s = serializers.IntegerField(help_text="WORK_RESEND_AFTER: a queued job waiting longer is amber.")
    heartbeat_timeout_s = serializers.IntegerField(help_text="WORK_HEARTBEAT_TIMEOUT: a running job silent longer "
                                                             "is lost.")


class StatusSweeperSerializer(serializers.Serializer):
    """Beat's schedule of ``core.sweep_work``, which sends lost messages again and takes back lost jobs."""

    scheduled = serializers.BooleanField()
    enabled = serializers.BooleanField()
    every_s = serializers.FloatField(allow_null=True, help_text="Its interval; null: not an interval schedule.")
    last_run_at = serializers.DateTimeField(allow_null=True, help_text="Last time beat sent it (written by beat "
                                                                       "every 3 min).")
    last_run_ago = serializers.CharField(allow_null=True)
    admin_url = serializers.CharField(help_text="Beat's periodic tasks in the Django admin.")
    level = serializers.ChoiceField(choices=STATUS_LEVELS, help_text=STATUS_LEVEL_HELP)
    alerts = StatusAlertSerializer(many=True)


class StatusSerializer(serializers.Serializer):
    """Shape of ``GET /api/status/`` (documentation only)."""

    checked_at = serializers.DateTimeField()
    level = serializers.ChoiceField(choices=STATUS_LEVELS, help_text="The worst alert's; " + STATUS_LEVEL_HELP)
    alerts = PlatformAlertSerializer(many=True, help_text="Every alert of the queues and kinds, red first.")
    thresholds = StatusThresholdsSerializer()
    sweeper = StatusSweeperSerializer(allow_null=True, help_text="Null when the database is down.")
    database = serializers.DictField()
    broker = serializers.DictField()
    queues = serializers.DictField(child=serializers.IntegerField(allow_null=True),
                                   help_text="Messages waiting per queue; empty when the broker is down.")
    queues_error = serializers.CharField()
    queue_details = StatusQueueSerializer(many=True)
    jobs_by_kind = StatusKindSerializer(many=True, help_text="Empty when the database is down.")
    workers = serializers.ListField(child=serializers.DictField())
    workers_error = serializers.CharField()
    active_model = serializers.DictField(allow_null=True)
    jobs = serializers.ListField(child=serializers.DictField(), help_text="Split prediction jobs queued or running.")
