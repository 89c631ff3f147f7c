from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ml.labels import CLASSES

from .models import CamLayer, Explanation, ModelVersion, Prediction
from .services.predictions import (
    CAM_LAYERS,
    CAM_METHODS,
    DEFAULT_METHODS,
    FINE_LAYER_METHODS,
    TargetInvalid,
    target_label_validate,
)


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
        fields = ["id", "method", "layer", "target_label", "target_class", "overlay_url", "model_version",
                  "created_at"]
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
    layer = serializers.ChoiceField(
        choices=CamLayer.choices, default=CamLayer.LAST,
        help_text=f"The feature map to hook: last (6x6) or fine (12x12; only {', '.join(FINE_LAYER_METHODS)}, other "
                  "methods answer 400 bad_layer).",
        error_messages={"invalid_choice": f'unknown CAM layer "{{input}}"; choose one of: {", ".join(CAM_LAYERS)}'},
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
    layer = serializers.CharField()
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
