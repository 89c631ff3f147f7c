from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ml.labels import CLASSES
from ml.scoring import DEFAULT_RANKING

from .choices import Choice
from .models import ReviewItem, ScoringRun, Vote
from .scoring import EPOCHS_MAX, OUTLIERS_MAX, SEED_MAX


class ChoiceInputSerializer(serializers.Serializer):
    choice = serializers.ChoiceField(choices=Choice.choices, help_text="0-6 emotions, 7 not a face, 8 unsure.")


class GoldInputSerializer(serializers.Serializer):
    face = serializers.IntegerField(min_value=1)
    label = serializers.IntegerField(min_value=0, max_value=7, help_text="0-6 emotions, 7 not a face.")


class NextQuerySerializer(serializers.Serializer):
    count = serializers.IntegerField(min_value=1, max_value=20, default=1)


class ScoringRunInputSerializer(serializers.Serializer):
    method = serializers.ChoiceField(choices=ScoringRun.Method.choices, default=ScoringRun.Method.OUT_OF_FOLD,
                                     help_text="out_of_fold: k-fold cross-fitting (slow); in_sample: the active "
                                               "version's own probabilities (minutes, provisional); short_run: one "
                                               "short model on every face, its probabilities along the run; "
                                               "dynamics: the active version's own training run's (free).")
    folds = serializers.IntegerField(min_value=2, max_value=20, default=4, help_text="Out-of-fold runs only.")
    epochs = serializers.IntegerField(min_value=1, max_value=EPOCHS_MAX, required=False, allow_null=True, default=None,
                                      help_text=f"Per fold (or of the short run), 1-{EPOCHS_MAX}; empty: the "
                                                f"recipe's. Not for in-sample runs.")
    ranking = serializers.CharField(default=DEFAULT_RANKING, max_length=40)
    filter_by = serializers.CharField(default="prune_by_noise_rate", max_length=40)
    seed = serializers.IntegerField(min_value=0, max_value=SEED_MAX, default=0, help_text=f"0-{SEED_MAX}.")
    blend_active = serializers.BooleanField(default=False, help_text="Out-of-fold and short runs: average their "
                                                                     "probabilities with the active version's "
                                                                     "in-sample ones.")
    outliers = serializers.IntegerField(min_value=0, max_value=OUTLIERS_MAX, default=0, help_text=(
        "Also score every face for 'not a face / outlier' (image statistics and the active version's features) and "
        f"put at most this many suspects in the queue as outlier items, 0-{OUTLIERS_MAX}; 0: none."))
    outlier_min_score = serializers.FloatField(min_value=0.0, max_value=1.0, default=0.5,
                                               help_text="Only faces whose outlier score (0-1) reaches this.")


class KaggleExportQuerySerializer(serializers.Serializer):
    # A slug, as dataset names are: it also goes into the Content-Disposition header (no newlines or quotes).
    dataset = serializers.SlugField(max_length=100, default="fer2013", help_text="Dataset name (default fer2013).")


class ReviewItemSerializer(serializers.ModelSerializer):
    """What a reviewer sees before voting: no votes, and gold items look like any other. ``quality`` (the ranking
    score) is for admins: gold items are served at random places among the ranked ones, so it would give them away.
    Context: ``is_admin``."""

    face = serializers.IntegerField(source="face_id")
    image = serializers.SerializerMethodField()
    current_label = serializers.IntegerField(source="face.current_label", allow_null=True)
    current_label_name = serializers.SerializerMethodField()
    original_label = serializers.IntegerField(source="face.original_label", allow_null=True)
    suggested_label_name = serializers.SerializerMethodField()
    probabilities = serializers.SerializerMethodField()
    quality = serializers.SerializerMethodField()
    reasons = serializers.SerializerMethodField()
    kind = serializers.ChoiceField(choices=ReviewItem.Kind.choices, read_only=True,
                                   help_text="Why the face is in the queue: label_issue, outlier or "
                                             "duplicate_conflict.")
    kind_label = serializers.CharField(source="get_kind_display", read_only=True)
    kind_detail = serializers.DictField(read_only=True, help_text="What put it there: an outlier's score, reason and "
                                                                  "image statistics; a duplicate conflict's group.")

    class Meta:
        model = ReviewItem
        fields = ["id", "face", "image", "current_label", "current_label_name", "original_label", "suggested_label",
                  "suggested_label_name", "suggested_probability", "probabilities", "quality", "reasons", "kind",
                  "kind_label", "kind_detail", "lease_expires_at"]

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

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_reasons(self, item: ReviewItem) -> list[str]:
        """Why the item is in the queue (``selectors.item_reasons``), the same for gold and regular items."""
        from .learning import reviewer_model_current
        from .selectors import item_reasons

        if "reviewer_model" not in self.context:  # one lookup per response
            self.context["reviewer_model"] = reviewer_model_current()
        return item_reasons(item, self.context["reviewer_model"])

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_quality(self, item: ReviewItem) -> float | None:
        if item.score is None or not self.context.get("is_admin"):
            return None
        return item.score.quality


class VoteSerializer(serializers.ModelSerializer):
    reviewer = serializers.CharField(source="reviewer.get_username")
    choice_name = serializers.CharField(source="get_choice_display")

    class Meta:
        model = Vote
        fields = ["id", "item", "reviewer", "round", "choice", "choice_name", "created_at"]


class LabelHistorySerializer(serializers.Serializer):
    """A ``selectors.HistoryEntry``: ``votes`` is null for a round whose votes the requester may not see (blind
    review)."""

    id = serializers.IntegerField()
    kind = serializers.CharField()
    round = serializers.IntegerField()
    old_label = serializers.IntegerField(allow_null=True)
    new_label = serializers.IntegerField(allow_null=True)
    old_excluded = serializers.BooleanField()
    new_excluded = serializers.BooleanField()
    votes = serializers.ListField(child=serializers.DictField(), allow_null=True,
                                  help_text="[{reviewer, reviewer_id, choice, choice_name, at}] of that round.")
    actor = serializers.CharField(help_text="The admin or reviewer who acted; empty for a quorum.")
    created_at = serializers.DateTimeField()


class ReviewItemDetailSerializer(ReviewItemSerializer):
    """Detail with history, blind: ``votes`` is null until the requester holds a final counted vote in the current
    round, and the history shows only the votes of rounds where they hold one (admins: all). Context: ``is_admin``
    and ``blind`` (``selectors.BlindReview`` of the requester)."""

    votes = serializers.SerializerMethodField()
    history = serializers.SerializerMethodField()
    gold_label = serializers.SerializerMethodField()

    class Meta(ReviewItemSerializer.Meta):
        fields = [*ReviewItemSerializer.Meta.fields, "status", "round", "settled_label", "settled_at", "votes",
                  "history", "gold_label"]

    @extend_schema_field(VoteSerializer(many=True, allow_null=True))
    def get_votes(self, item: ReviewItem):
        votes = self.context["blind"].current_votes(item)
        return None if votes is None else VoteSerializer(votes, many=True).data

    @extend_schema_field(LabelHistorySerializer(many=True))
    def get_history(self, item: ReviewItem):
        return LabelHistorySerializer(self.context["blind"].history(item), many=True).data

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
    gold = serializers.IntegerField(allow_null=True, help_text="Admins only (null for reviewers).")
    leased = serializers.IntegerField()
    votes = serializers.IntegerField()
    votes_today = serializers.IntegerField()
    label_changes = serializers.IntegerField()
    last_scoring_run = serializers.DictField(allow_null=True)
    queue_run = serializers.DictField(allow_null=True, help_text="The scoring run that filled the queue: id, method, "
                                                                 "in_sample, ranking, filter_by, flagged.")
    refining_run = serializers.DictField(allow_null=True, help_text="A newer run still working on replacing it.")
    progress = ProgressSerializer()


class ReviewerAgreementSerializer(serializers.Serializer):
    reviewer = serializers.CharField(source="username")
    votes = serializers.IntegerField()
    votes_today = serializers.IntegerField()
    unsure = serializers.IntegerField()
    on_settled = serializers.IntegerField()
    agreement = serializers.FloatField(allow_null=True)
    gold_votes = serializers.IntegerField(required=False, help_text="Admins only.")
    gold_accuracy = serializers.FloatField(allow_null=True, required=False, help_text="Admins only.")


GOLD_FIELDS = ("gold_votes", "gold_accuracy")


class AgreementSerializer(serializers.Serializer):
    """``selectors.AgreementReport``; the gold figures appear only in an admin's report."""

    reviewers = ReviewerAgreementSerializer(many=True)
    fleiss_kappa = serializers.FloatField(source="kappa", allow_null=True)
    kappa_items = serializers.IntegerField()

    def to_representation(self, report):
        data = super().to_representation(report)
        if not report.gold:
            data["reviewers"] = [{k: v for k, v in row.items() if k not in GOLD_FIELDS} for row in data["reviewers"]]
        return data


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
    """A run with its live progress: ``progress`` is the last event (``fraction`` done, ``eta_seconds``, the fold,
    epoch and batch it is in), ``history`` one entry per finished epoch and fold."""

    model_version_name = serializers.CharField(source="model_version.name", allow_null=True, default=None)
    epochs_per_fold = serializers.SerializerMethodField()

    class Meta:
        model = ScoringRun
        fields = ["id", "status", "method", "blend_active", "model_version", "model_version_name", "cancel_requested",
                  "folds", "epochs", "epochs_per_fold", "ranking", "filter_by", "seed", "progress", "history",
                  "scored_count",
                  "issue_count", "items_created", "items_updated", "items_retired", "outliers", "outlier_min_score",
                  "outlier_report", "ferplus", "error", "attempts",
                  "created_at", "started_at", "finished_at"]

    def get_epochs_per_fold(self, run: ScoringRun) -> int | None:
        """The epochs each fold (or the short run) trains (the recipe's when ``epochs`` is empty); null for in-sample
        runs."""
        if run.method in (ScoringRun.Method.IN_SAMPLE, ScoringRun.Method.DYNAMICS):
            return None
        if run.epochs:
            return run.epochs
        from ml.recipes import apply_overrides, get_recipe

        return apply_overrides(get_recipe("scoring"), run.recipe_overrides or {}).epochs
