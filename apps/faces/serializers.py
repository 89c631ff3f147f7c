from __future__ import annotations

from rest_framework import serializers

from .models import NearDuplicateRun


class NearDuplicateRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = NearDuplicateRun
        fields = ["id", "status", "error", "progress", "created_at", "started_at", "finished_at", "model_version",
                  "hash_alone", "cosine", "hash_with_cosine", "faces_searched", "pair_count", "group_count",
                  "cross_split_groups", "conflicting_groups", "public_test_with_training", "flagged"]
        read_only_fields = fields


class NearDuplicateQuerySerializer(serializers.Serializer):
    cross_split = serializers.BooleanField(default=False, help_text="Only groups that span splits.")
    conflicting = serializers.BooleanField(default=False, help_text="Only groups whose labels differ.")
    offset = serializers.IntegerField(default=0, min_value=0)
    limit = serializers.IntegerField(default=50, min_value=1, max_value=200)


class NearDuplicateMemberSerializer(serializers.Serializer):
    face_id = serializers.IntegerField()
    split = serializers.CharField()
    label = serializers.IntegerField(allow_null=True, help_text="Its current label when the search ran.")
    current_label = serializers.IntegerField(allow_null=True)
    png_url = serializers.CharField()


class NearDuplicateGroupSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    splits = serializers.ListField(child=serializers.CharField())
    cross_split = serializers.BooleanField()
    conflicting = serializers.BooleanField()
    pairs = serializers.ListField(child=serializers.ListField(), help_text="[face a, face b, hash distance, cosine]")
    members = NearDuplicateMemberSerializer(many=True)
    hidden = serializers.IntegerField(help_text="Members of the group you may not see.")


class NearDuplicatesSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=["none", "pending", "ready"],
                                    help_text="none: no search yet; pending: the first is queued or running.")
    run = NearDuplicateRunSerializer(allow_null=True, help_text="The latest succeeded search.")
    pending = NearDuplicateRunSerializer(allow_null=True, help_text="A search queued or running now.")
    total = serializers.IntegerField(help_text="Groups that match the filters.")
    groups = NearDuplicateGroupSerializer(many=True)
