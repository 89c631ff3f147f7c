from __future__ import annotations

from rest_framework import serializers

from apps.faces.models import Split
from ml.embedding import DEFAULT_METHOD, METHODS


class DataMapStartSerializer(serializers.Serializer):
    model_version = serializers.IntegerField(required=False, allow_null=True,
                                             help_text="Model version id; omitted: the active one.")
    split = serializers.CharField(default=Split.PUBLIC_TEST.value,
                                  help_text="A split whose faces you may see (Training, PublicTest; PrivateTest for "
                                            "admins when shown).")
    method = serializers.ChoiceField(choices=list(METHODS), default=DEFAULT_METHOD,
                                     help_text="umap (umap-learn) or tsne (scikit-learn).")


class DataMapSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField(help_text="queued, running, succeeded, failed or cancelled.")
    error = serializers.CharField(help_text="Why it failed, if it did.")
    model_version = serializers.IntegerField(source="model_version_id")
    model_version_name = serializers.CharField(source="model_version.name")
    split = serializers.CharField()
    method = serializers.CharField()
    seed = serializers.IntegerField()
    face_count = serializers.IntegerField(help_text="Faces placed (0 until it succeeds).")
    progress = serializers.DictField(help_text="The latest progress event: stage (features, layout, storing), done, "
                                               "total.")
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class DataMapPointsSerializer(serializers.Serializer):
    """Parallel arrays, one entry per face (ordered by face id)."""

    ids = serializers.ListField(child=serializers.IntegerField())
    x = serializers.ListField(child=serializers.FloatField(), help_text="0-1, left to right.")
    y = serializers.ListField(child=serializers.FloatField(), help_text="0-1, bottom to top.")
    label = serializers.ListField(child=serializers.IntegerField(allow_null=True),
                                  help_text="Current label when the map was made (class index; null: unlabelled).")
    predicted = serializers.ListField(child=serializers.IntegerField(), help_text="Predicted class index.")
    confidence = serializers.ListField(child=serializers.FloatField())
    quality = serializers.ListField(child=serializers.FloatField(allow_null=True),
                                    help_text="Label quality of the latest successful scoring run (low: likely "
                                              "wrong; null: not scored). Read live.")
    review = serializers.ListField(child=serializers.CharField(allow_null=True),
                                   help_text="Status of the face's review item (open, settled, reopened, disputed; "
                                             "null: none). Read live.")
    image = serializers.ListField(child=serializers.CharField(), help_text="URL of the face's 48x48 PNG.")


class DataMapDetailSerializer(DataMapSerializer):
    points = DataMapPointsSerializer(allow_null=True, help_text="Null until the map has succeeded (poll).")
