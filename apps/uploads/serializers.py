"""Input checks for the upload API and the JSON shape of an upload's result."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from rest_framework import serializers

from ml.labels import CLASSES

from .models import Upload
from .selectors import UploadResult


def _methods_list(value: str) -> list[str]:
    return [m.strip() for m in value.split(",") if m.strip()]


class WaitSerializer(serializers.Serializer):
    wait = serializers.FloatField(required=False, min_value=0, default=0,
                                  help_text="Seconds to wait for the result (capped by UPLOADS_MAX_WAIT_SECONDS).")

    def validate_wait(self, value: float) -> float:
        return min(value, float(settings.UPLOADS_MAX_WAIT_SECONDS))


class UploadCreateQuerySerializer(WaitSerializer):
    no_face = serializers.ChoiceField(choices=Upload.NoFace.choices, required=False, allow_null=True, default=None,
                                      help_text="When no face is found: use the whole image, or report it "
                                                "(default: use_whole for 48x48 images, reject otherwise).")
    methods = serializers.CharField(required=False, allow_blank=True, default=None, allow_null=True,
                                    help_text="Comma-separated CAM methods, e.g. gradcam,scorecam (default gradcam).")

    def validate_methods(self, value: str | None) -> list[str] | None:
        return None if value is None else _methods_list(value)


class UploadExplanationRequestSerializer(serializers.Serializer):
    method = serializers.CharField(help_text="CAM method, e.g. gradcam, gradcam++, scorecam.")
    target = serializers.CharField(required=False, allow_blank=True, default="",
                                   help_text="Class to explain (name or 0-6); default the predicted class.")
    face = serializers.IntegerField(required=False, min_value=0, default=0,
                                    help_text="Index of the face in the upload's `faces` (0, the largest, by default).")


class UploadHeatmapSerializer(serializers.Serializer):
    method = serializers.CharField()
    target_label = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    def get_target_label(self, explanation) -> str:
        return CLASSES[explanation.target_label]

    def get_url(self, explanation) -> str:
        return _absolute(self.context.get("request"), explanation.overlay.url)


def _absolute(request, url: str) -> str:
    return request.build_absolute_uri(url) if request is not None else url


def _model_version(prediction) -> dict | None:
    if prediction is None:
        return None
    return {"id": prediction.model_version.pk, "name": prediction.model_version.name}


def _probabilities(prediction) -> dict[str, float] | None:
    if prediction is None:
        return None
    return {name: float(p) for name, p in zip(CLASSES, prediction.probabilities, strict=True)}


class UploadFaceSerializer(serializers.Serializer):
    """One face of an upload, predicted on its own; the prediction fields are null until the worker has answered."""

    index = serializers.IntegerField(source="upload_face.index", help_text="0 for the largest face, then by size.")
    status = serializers.SerializerMethodField(help_text="queued, processing, done or failed.")
    box = serializers.JSONField(source="upload_face.box", allow_null=True,
                                help_text="x, y, w, h of the detected face in the EXIF-oriented photo (width x "
                                          "height); null when the whole image was used.")
    crop_box = serializers.ListField(source="upload_face.crop_box", child=serializers.IntegerField(),
                                     help_text="left, top, right, bottom actually cut out, same coordinates.")
    face_id = serializers.IntegerField(source="upload_face.face_id")
    face_url = serializers.SerializerMethodField()
    model_version = serializers.SerializerMethodField()
    predicted_label = serializers.SerializerMethodField()
    confidence = serializers.FloatField(source="prediction.confidence", default=None)
    probabilities = serializers.SerializerMethodField()
    heatmaps = UploadHeatmapSerializer(source="explanations", many=True)
    error = serializers.SerializerMethodField()

    def get_status(self, result) -> str:
        return result.state()[0]

    def get_error(self, result) -> str:
        return result.state()[1]

    def get_face_url(self, result) -> str:
        return _absolute(self.context.get("request"), result.upload_face.face.pixels.png.url)

    def get_model_version(self, result) -> dict | None:
        return _model_version(result.prediction)

    def get_predicted_label(self, result) -> str | None:
        return CLASSES[result.prediction.predicted_label] if result.prediction is not None else None

    def get_probabilities(self, result) -> dict[str, float] | None:
        return _probabilities(result.prediction)


class UploadResultSerializer(serializers.Serializer):
    """One upload with whatever is known of its prediction; those fields are null until the worker has answered.

    ``faces`` lists every face predicted (up to ``UPLOADS_MAX_FACES``, largest first); the upload's own face and
    prediction fields repeat its largest face, ``faces[0]``."""

    id = serializers.UUIDField(source="upload.pk")
    status = serializers.CharField()
    created_at = serializers.DateTimeField(source="upload.created_at")
    finished_at = serializers.DateTimeField(allow_null=True)
    original_name = serializers.CharField(source="upload.original_name")
    content_type = serializers.CharField(source="upload.content_type")
    size = serializers.IntegerField(source="upload.size")
    width = serializers.IntegerField(source="upload.width")
    height = serializers.IntegerField(source="upload.height")
    face_found = serializers.BooleanField(source="upload.face_found")
    face_box = serializers.JSONField(source="upload.face_box")
    no_face = serializers.CharField(source="upload.no_face")
    methods = serializers.ListField(source="upload.methods", child=serializers.CharField())
    face_id = serializers.IntegerField(source="upload.face_id")
    face_url = serializers.SerializerMethodField()
    model_version = serializers.SerializerMethodField()
    predicted_label = serializers.SerializerMethodField()
    confidence = serializers.FloatField(source="prediction.confidence", default=None)
    probabilities = serializers.SerializerMethodField()
    heatmaps = UploadHeatmapSerializer(source="explanations", many=True)
    error = serializers.CharField()
    photo_url = serializers.SerializerMethodField(help_text="The photo as shown (EXIF-oriented JPEG, at most 1280 "
                                                  "pixels a side); boxes are in width x height, scale them to it.")
    faces = UploadFaceSerializer(many=True)

    def get_photo_url(self, result: UploadResult) -> str | None:
        if not result.upload.photo:
            return None
        return _absolute(self.context.get("request"), reverse("api-upload-photo", args=[result.upload.pk]))

    def get_face_url(self, result: UploadResult) -> str | None:
        face = result.upload.face
        return _absolute(self.context.get("request"), face.pixels.png.url) if face is not None else None

    def get_model_version(self, result: UploadResult) -> dict | None:
        return _model_version(result.prediction)

    def get_predicted_label(self, result: UploadResult) -> str | None:
        return CLASSES[result.prediction.predicted_label] if result.prediction is not None else None

    def get_probabilities(self, result: UploadResult) -> dict[str, float] | None:
        return _probabilities(result.prediction)
