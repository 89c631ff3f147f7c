from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.inference.models import Prediction
from apps.inference.serializers import ExplanationRequestSerializer
from ml.labels import CLASSES

from .params import media_url

PROBABILITIES = {"type": "object", "additionalProperties": {"type": "number"},
                 "example": dict.fromkeys(CLASSES, 0.142857)}


def _class(label: int | None) -> str | None:
    return None if label is None else CLASSES[label]


def _absolute(context: dict, url: str | None) -> str | None:
    request = context.get("request")
    return request.build_absolute_uri(url) if request is not None and url else url


class GalleryFaceSerializer(serializers.Serializer):
    """A gallery tile: an annotated prediction from ``selectors.gallery_predictions``."""

    face_id = serializers.IntegerField(source="face.pk")
    split = serializers.CharField(source="face.split")
    source_row = serializers.IntegerField(source="face.source_row", allow_null=True)
    original_class = serializers.SerializerMethodField()
    true_class = serializers.SerializerMethodField()
    predicted_class = serializers.SerializerMethodField()
    confidence = serializers.FloatField()
    probabilities = serializers.SerializerMethodField()
    correct = serializers.BooleanField(source="is_correct")
    reviewed = serializers.BooleanField(source="is_reviewed")
    label_quality = serializers.FloatField(allow_null=True)
    face_url = serializers.SerializerMethodField()
    overlay_url = serializers.SerializerMethodField()
    road = serializers.FloatField(allow_null=True, help_text="ROAD (combined) of this map; null: not measured.")
    road_baseline = serializers.FloatField(allow_null=True,
                                           help_text="ROAD of a seeded uniform random map on the same face.")

    def get_original_class(self, obj: Prediction) -> str | None:
        return _class(obj.face.original_label)

    def get_true_class(self, obj: Prediction) -> str | None:
        return _class(obj.face.current_label)

    def get_predicted_class(self, obj: Prediction) -> str:
        return CLASSES[obj.predicted_label]

    @extend_schema_field(PROBABILITIES)
    def get_probabilities(self, obj: Prediction) -> dict[str, float]:
        return dict(zip(CLASSES, obj.probabilities, strict=True))

    @extend_schema_field(OpenApiTypes.URI)
    def get_face_url(self, obj: Prediction) -> str | None:
        return _absolute(self.context, obj.face.pixels.png.url)

    @extend_schema_field({"type": "string", "format": "uri", "nullable": True,
                          "description": "Stored overlay of the method for the predicted class; null if none."})
    def get_overlay_url(self, obj: Prediction) -> str | None:
        return _absolute(self.context, media_url(obj.overlay_name))


class FaceExplanationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    method = serializers.CharField()
    layer = serializers.CharField()
    target_class = serializers.SerializerMethodField()
    overlay_url = serializers.SerializerMethodField()

    def get_target_class(self, obj) -> str:
        return CLASSES[obj.target_label]

    @extend_schema_field(OpenApiTypes.URI)
    def get_overlay_url(self, obj) -> str:
        return _absolute(self.context, obj.overlay.url)


class GalleryLabelHistorySerializer(serializers.Serializer):
    kind = serializers.CharField()
    old_class = serializers.SerializerMethodField()
    new_class = serializers.SerializerMethodField()
    new_excluded = serializers.BooleanField()
    actor = serializers.CharField(source="actor.username", allow_null=True, default=None)
    votes = serializers.JSONField(allow_null=True, help_text="null for a round whose votes the viewer may not see "
                                  "(admins and final counted voters of the round see them)")
    created_at = serializers.DateTimeField()

    def get_old_class(self, obj) -> str | None:
        return _class(obj.old_label)

    def get_new_class(self, obj) -> str | None:
        return _class(obj.new_label)


class GalleryVoteSerializer(serializers.Serializer):
    reviewer = serializers.CharField(source="reviewer.username")
    round = serializers.IntegerField()
    choice = serializers.CharField(source="get_choice_display")
    created_at = serializers.DateTimeField()


class FaceDetailSerializer(serializers.Serializer):
    """``selectors.FaceDetail``: one face under one version."""

    face_id = serializers.IntegerField(source="face.pk")
    split = serializers.CharField(source="face.split")
    original_class = serializers.SerializerMethodField()
    true_class = serializers.SerializerMethodField()
    model_version = serializers.IntegerField(source="version.pk", allow_null=True, default=None)
    predicted_class = serializers.SerializerMethodField()
    confidence = serializers.FloatField(source="prediction.confidence", allow_null=True, default=None)
    probabilities = serializers.SerializerMethodField()
    label_quality = serializers.FloatField(source="label_score.quality", allow_null=True, default=None)
    explanations = FaceExplanationSerializer(many=True)
    history = GalleryLabelHistorySerializer(many=True)
    votes = GalleryVoteSerializer(many=True)
    face_url = serializers.SerializerMethodField()

    def get_original_class(self, obj) -> str | None:
        return _class(obj.face.original_label)

    def get_true_class(self, obj) -> str | None:
        return _class(obj.face.current_label)

    def get_predicted_class(self, obj) -> str | None:
        return _class(obj.prediction.predicted_label) if obj.prediction else None

    @extend_schema_field({**PROBABILITIES, "nullable": True})
    def get_probabilities(self, obj) -> dict[str, float] | None:
        return dict(obj.probabilities) if obj.prediction else None

    @extend_schema_field(OpenApiTypes.URI)
    def get_face_url(self, obj) -> str | None:
        return _absolute(self.context, obj.face.pixels.png.url)


class GalleryExplanationRequestSerializer(ExplanationRequestSerializer):
    version = serializers.IntegerField(required=False, allow_null=True, default=None,
                                       help_text="Model version id; omitted: the active version.")


class ComparePairSerializer(serializers.Serializer):
    face_id = serializers.IntegerField(source="face.pk")
    true_class = serializers.SerializerMethodField()
    a_class = serializers.SerializerMethodField()
    a_confidence = serializers.FloatField(source="confidence")
    a_overlay_url = serializers.SerializerMethodField()
    b_class = serializers.SerializerMethodField()
    b_confidence = serializers.FloatField()
    b_overlay_url = serializers.SerializerMethodField()
    changed = serializers.SerializerMethodField()

    def get_true_class(self, obj) -> str | None:
        return _class(obj.face.current_label)

    def get_a_class(self, obj) -> str:
        return CLASSES[obj.predicted_label]

    def get_b_class(self, obj) -> str:
        return CLASSES[obj.b_label]

    @extend_schema_field({"type": "string", "format": "uri", "nullable": True})
    def get_a_overlay_url(self, obj) -> str | None:
        return _absolute(self.context, media_url(obj.a_overlay))

    @extend_schema_field({"type": "string", "format": "uri", "nullable": True})
    def get_b_overlay_url(self, obj) -> str | None:
        return _absolute(self.context, media_url(obj.b_overlay))

    def get_changed(self, obj) -> bool:
        return obj.predicted_label != obj.b_label


class FaithfulnessSerializer(serializers.Serializer):
    method = serializers.CharField()
    layer = serializers.CharField()
    metric = serializers.CharField()
    split = serializers.CharField()
    mean = serializers.FloatField()
    std = serializers.FloatField()
    sample_size = serializers.IntegerField()
    percentiles = serializers.JSONField()
    baseline_mean = serializers.FloatField(allow_null=True, help_text="Mean ROAD of random maps on the same faces.")
    beats_baseline = serializers.FloatField(allow_null=True, help_text="Share of faces whose map beats the random map.")


class EvaluationSerializer(serializers.Serializer):
    """``GET /api/gallery/models/{id}/evaluation``: a ``selectors.EvaluationReport``."""

    model_version = serializers.IntegerField(source="version.pk")
    evaluations = serializers.ListField(child=serializers.DictField(),
                                        help_text="Per split: faces, predicted, metrics (null when none predicted).")
    class_distribution = serializers.DictField()
    history = serializers.ListField(child=serializers.DictField())
    faithfulness = FaithfulnessSerializer(many=True)
    published = serializers.SerializerMethodField(
        help_text="The seeds' published figures: not measured on this platform.")
    ferplus = serializers.DictField(
        allow_null=True,
        help_text="PublicTest accuracy of the stored predictions against the FER+ majority emotion: split, accuracy "
                  "(null when n is 0), n (faces scored), left_out (predicted faces with votes but no majority "
                  "emotion: tied, or contempt, unknown or not-a-face on top), faces (PublicTest faces with votes). "
                  "Null when no FER+ votes are imported (manage.py import_ferplus).")

    def get_published(self, report) -> list[dict]:
        return [{**figure, "measured_here": False} for figure in report.published]


class ClassMapsSerializer(serializers.Serializer):
    """``GET /api/gallery/models/{id}/class-maps`` (``selectors.class_maps_report``)."""

    model_version = serializers.IntegerField()
    method = serializers.CharField()
    by = serializers.CharField()
    split = serializers.CharField()
    classes = serializers.DictField(child=serializers.DictField(),
                                    help_text="Per class name: count and mean (48x48 nested lists, 0-1; null if none).")
    cells = serializers.ListField(child=serializers.DictField(),
                                  help_text="by=predicted: true, predicted, count, mean.")


class FaithfulnessRequestSerializer(serializers.Serializer):
    methods = serializers.ListField(child=serializers.CharField(), allow_empty=False, default=["gradcam"])
    layers = serializers.ListField(child=serializers.CharField(), allow_empty=False, default=["last"],
                                   help_text="CAM layers, each measured for every method: last, fine (fine only for "
                                             "hirescam and layercam; otherwise 400 bad_layer).")
    sample_size = serializers.IntegerField(min_value=1, max_value=5000, default=200)
    split = serializers.ChoiceField(choices=["PublicTest", "PrivateTest"], default="PublicTest")


class FaithfulnessQueuedSerializer(serializers.Serializer):
    run = serializers.IntegerField(source="pk", help_text="The faithfulness run: its row is the job (status page).")
    status = serializers.CharField()
    model_version = serializers.IntegerField(source="model_version_id")
    methods = serializers.ListField(child=serializers.CharField())
    layers = serializers.ListField(child=serializers.CharField())
    sample_size = serializers.IntegerField()
    split = serializers.CharField()
