from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ml.labels import CLASSES

from .choices import Choice
from .models import LabelHistory, ReviewItem, ScoringRun, Vote


class ChoiceInputSerializer(serializers.Serializer):
    choice = serializers.ChoiceField(choices=Choice.choices, help_text="0-6 emotions, 7 not a face, 8 unsure.")


class GoldInputSerializer(serializers.Serializer):
    face = serializers.IntegerField(min_value=1)
    label = serializers.IntegerField(min_value=0, max_value=7, help_text="0-6 emotions, 7 not a face.")


class NextQuerySerializer(serializers.Serializer):
    count = serializers.IntegerField(min_value=1, max_value=20, default=1)


class ScoringRunInputSerializer(serializers.Serializer):
    folds = serializers.IntegerField(min_value=2, max_value=20, default=4)
    epochs = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None)
    ranking = serializers.CharField(default="self_confidence")
    filter_by = serializers.CharField(default="prune_by_noise_rate")
    seed = serializers.IntegerField(default=0)


class ReviewItemSerializer(serializers.ModelSerializer):
    """What a reviewer sees before voting: no votes, and gold items look like any other."""

    face = serializers.IntegerField(source="face_id")
    image = serializers.SerializerMethodField()
    current_label = serializers.IntegerField(source="face.current_label", allow_null=True)
    current_label_name = serializers.SerializerMethodField()
    original_label = serializers.IntegerField(source="face.original_label", allow_null=True)
    suggested_label_name = serializers.SerializerMethodField()
    probabilities = serializers.SerializerMethodField()
    quality = serializers.SerializerMethodField()

    class Meta:
        model = ReviewItem
        fields = ["id", "face", "image", "current_label", "current_label_name", "original_label", "suggested_label",
                  "suggested_label_name", "suggested_probability", "probabilities", "quality", "lease_expires_at"]

    @extend_schema_field(serializers.URLField())
    def get_image(self, item: ReviewItem) -> str:
        url = item.face.pixels.png.url
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request is not None else url

    def get_current_label_name(self, item: ReviewItem) -> str:
        label = item.face.current_label
        return "" if label is None else CLASSES[label]

    def get_suggested_label_name(self, item: ReviewItem) -> str:
        return "" if item.suggested_label is None else CLASSES[item.suggested_label]

    @extend_schema_field(serializers.ListField(child=serializers.FloatField(), allow_null=True))
    def get_probabilities(self, item: ReviewItem) -> list[float] | None:
        return None if item.score is None else item.score.probabilities

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_quality(self, item: ReviewItem) -> float | None:
        return None if item.score is None else item.score.quality


class VoteSerializer(serializers.ModelSerializer):
    reviewer = serializers.CharField(source="reviewer.get_username")
    choice_name = serializers.CharField(source="get_choice_display")

    class Meta:
        model = Vote
        fields = ["id", "item", "reviewer", "round", "choice", "choice_name", "created_at"]


class LabelHistorySerializer(serializers.ModelSerializer):
    actor = serializers.SerializerMethodField()

    class Meta:
        model = LabelHistory
        fields = ["id", "kind", "old_label", "new_label", "old_excluded", "new_excluded", "votes", "actor",
                  "created_at"]

    def get_actor(self, entry: LabelHistory) -> str:
        return entry.actor.get_username() if entry.actor_id else ""


class ReviewItemDetailSerializer(ReviewItemSerializer):
    """Detail with history; ``votes`` is null until the requester has voted (blind voting)."""

    votes = serializers.SerializerMethodField()
    history = LabelHistorySerializer(many=True, read_only=True)
    gold_label = serializers.SerializerMethodField()

    class Meta(ReviewItemSerializer.Meta):
        fields = [*ReviewItemSerializer.Meta.fields, "status", "round", "settled_label", "settled_at", "votes",
                  "history", "gold_label"]

    @extend_schema_field(VoteSerializer(many=True, allow_null=True))
    def get_votes(self, item: ReviewItem):
        if not self.context.get("votes_visible"):
            return None
        return VoteSerializer(item.votes.filter(round=item.round).select_related("reviewer"), many=True).data

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_gold_label(self, item: ReviewItem) -> int | None:
        return item.gold_label if self.context.get("is_admin") else None  # gold items stay hidden from reviewers


class ProgressSerializer(serializers.Serializer):
    items_left = serializers.IntegerField()
    votes_today = serializers.IntegerField()


class NextItemsSerializer(serializers.Serializer):
    items = ReviewItemSerializer(many=True)
    progress = ProgressSerializer()


class VoteResultSerializer(serializers.Serializer):
    vote = VoteSerializer()
    item_status = serializers.CharField()
    settled_label = serializers.IntegerField(allow_null=True)
    progress = ProgressSerializer()


class UndoResultSerializer(serializers.Serializer):
    item = ReviewItemSerializer()
    item_status = serializers.CharField()
    undone_choice = serializers.IntegerField()
    progress = ProgressSerializer()


class QueueStatsSerializer(serializers.Serializer):
    open = serializers.IntegerField()
    reopened = serializers.IntegerField()
    settled = serializers.IntegerField()
    disputed = serializers.IntegerField()
    gold = serializers.IntegerField()
    leased = serializers.IntegerField()
    votes = serializers.IntegerField()
    votes_today = serializers.IntegerField()
    label_changes = serializers.IntegerField()
    last_scoring_run = serializers.DictField(allow_null=True)
    progress = ProgressSerializer()


class ReviewerAgreementSerializer(serializers.Serializer):
    reviewer = serializers.CharField(source="username")
    votes = serializers.IntegerField()
    votes_today = serializers.IntegerField()
    unsure = serializers.IntegerField()
    on_settled = serializers.IntegerField()
    agreement = serializers.FloatField(allow_null=True)
    gold_votes = serializers.IntegerField()
    gold_accuracy = serializers.FloatField(allow_null=True)


class AgreementSerializer(serializers.Serializer):
    reviewers = ReviewerAgreementSerializer(many=True)
    fleiss_kappa = serializers.FloatField(source="kappa", allow_null=True)
    kappa_items = serializers.IntegerField()


class ModelViewSerializer(serializers.Serializer):
    model_active = serializers.BooleanField()
    reason = serializers.CharField()
    model_version = serializers.DictField(allow_null=True)
    prediction = serializers.DictField(allow_null=True)
    overlays = serializers.DictField()
    pending = serializers.ListField(
        child=serializers.ChoiceField(choices=["current", "suggestion"]),
        help_text="Overlays queued to a worker and not stored yet: ask again in a moment.")


class ScoringRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = ScoringRun
        fields = ["id", "status", "folds", "epochs", "ranking", "filter_by", "seed", "progress", "scored_count",
                  "issue_count", "items_created", "items_updated", "error", "created_at", "started_at",
                  "finished_at"]
