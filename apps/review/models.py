"""The relabeling queue: scoring runs, label scores, review items, votes and the label history.

A ``ReviewItem`` exists at most once per face. Re-scoring updates its score and suggestion in place, so votes
already cast stay attached. Votes belong to a *round*: an admin's reopen starts a new round, and only the
current round's votes count for the quorum. ``FaceImage.original_label`` is never touched here; settling
changes ``current_label`` (or ``excluded`` for "not a face") and writes a ``LabelHistory`` row.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.core.models import WorkRow
from apps.faces.labels import Emotion
from apps.faces.models import FaceImage
from ml.scoring import DEFAULT_RANKING

from .choices import Choice


class ScoringRun(WorkRow):
    """One ranking of every labelled Training face. ``out_of_fold``: k-fold cross-fitting, each face predicted by a
    model that never saw it (slow). ``in_sample``: the active version's own probabilities on faces it was trained on
    (minutes; over-confident on its training labels, so a provisional queue until a refining run replaces it).
    ``short_run``: one short model on every face, ranked by its probabilities along the run, before it has memorised
    its labels (a fold's cost, for all faces). ``dynamics``: the same from the active version's own training run
    (``ModelVersion.dynamics``): free after every retrain."""

    class Method(models.TextChoices):
        OUT_OF_FOLD = "out_of_fold", "out-of-fold (k-fold cross-fitting)"
        IN_SAMPLE = "in_sample", "in-sample (the active model's own probabilities)"
        SHORT_RUN = "short_run", "short run (one short model's probabilities along its run)"
        DYNAMICS = "dynamics", "training dynamics (the active version's probabilities along its own training)"

    method = models.CharField(max_length=16, choices=Method.choices, default=Method.OUT_OF_FOLD)
    model_version = models.ForeignKey("inference.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="+", help_text="In-sample and blended runs: the version whose "
                                                                  "own probabilities ranked the faces.")
    blend_active = models.BooleanField(default=False, help_text="Out-of-fold runs: average the held-out probabilities "
                                                                "with model_version's in-sample ones.")
    folds = models.PositiveSmallIntegerField(default=4, help_text="0 for in-sample runs, 1 for short runs.")
    epochs = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Per fold (or of the short run); "
                                                                               "empty: the recipe's.")
    ranking = models.CharField(max_length=40, default=DEFAULT_RANKING)
    filter_by = models.CharField(max_length=40, default="prune_by_noise_rate")
    seed = models.IntegerField(default=0)
    recipe_overrides = models.JSONField(default=dict, blank=True, help_text="ml recipe overrides (tests, tuning).")
    history = models.JSONField(default=list, blank=True, help_text="One entry per finished epoch (fold, epoch, loss, "
                                                                   "seconds) and per finished fold.")
    ferplus = models.JSONField(null=True, blank=True, help_text="The ranking against FER+ disagreement (when FER+ "
                                                                "votes are imported).")
    scored_count = models.PositiveIntegerField(default=0)
    issue_count = models.PositiveIntegerField(default=0)
    items_created = models.PositiveIntegerField(default=0)
    items_updated = models.PositiveIntegerField(default=0)
    items_retired = models.PositiveIntegerField(default=0, help_text="Untouched open items of earlier runs that this "
                                                                     "run no longer flags (removed from the queue).")
    outliers = models.PositiveIntegerField(default=0, help_text="Also score every face for 'not a face / outlier' "
                                                                "and put at most this many suspects in the queue "
                                                                "(kind outlier); 0: no outlier scoring.")
    outlier_min_score = models.FloatField(default=0.5, help_text="Only faces whose outlier score (0-1) reaches this "
                                                                 "become outlier items.")
    outlier_model_version = models.ForeignKey("inference.ModelVersion", null=True, blank=True,
                                              on_delete=models.SET_NULL, related_name="+",
                                              help_text="The version whose penultimate features scored outliers.")
    outlier_report = models.JSONField(null=True, blank=True, help_text="What the outlier step did: faces scored, "
                                                                       "suspects, items created, updated, retired.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"scoring run {self.pk} ({self.status})"


class LabelScore(models.Model):
    """One image's label quality in one scoring run (kept per run, for comparison)."""

    run = models.ForeignKey(ScoringRun, on_delete=models.CASCADE, related_name="scores")
    face = models.ForeignKey(FaceImage, on_delete=models.CASCADE, related_name="label_scores")
    given_label = models.PositiveSmallIntegerField(choices=Emotion.choices)
    quality = models.FloatField(help_text="cleanlab label-quality score; low means likely wrong.")
    is_issue = models.BooleanField(default=False)
    suggested_label = models.PositiveSmallIntegerField(choices=Emotion.choices)
    suggested_probability = models.FloatField()
    probabilities = models.JSONField(help_text="7 out-of-sample class probabilities, in CLASSES order.")
    signals = models.JSONField(default=dict, blank=True, help_text=(
        "What else put the face where it is (short runs: negative_epochs of epochs, snapshots_agree of snapshots)."))

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "face"], name="review_unique_score_per_run")]
        indexes = [models.Index(fields=["run", "quality"])]


class ReviewItem(models.Model):
    class Status(models.TextChoices):
        OPEN = "open"
        SETTLED = "settled"
        REOPENED = "reopened"
        DISPUTED = "disputed", "disputed (no quorum after the maximum number of votes)"

    class Kind(models.TextChoices):
        """Why the face is in the queue."""

        LABEL_ISSUE = "label_issue", "label issue"
        OUTLIER = "outlier", "outlier (maybe not a face)"
        DUPLICATE_CONFLICT = "duplicate_conflict", "duplicate conflict"

    face = models.OneToOneField(FaceImage, on_delete=models.CASCADE, related_name="review_item")
    score = models.ForeignKey(LabelScore, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                              help_text="The latest scoring run's score for this face.")
    priority = models.FloatField(default=1.0, help_text="Lower is served first: the scoring run's label quality by its "
                                                        "ranking, until a queue fit re-ranks the open items by what "
                                                        "the reviewers settled.")
    suggested_label = models.PositiveSmallIntegerField(choices=Emotion.choices, null=True, blank=True)
    suggested_probability = models.FloatField(null=True, blank=True)
    kind = models.CharField(max_length=24, choices=Kind.choices, default=Kind.LABEL_ISSUE,
                            help_text="Why the face is in the queue.")
    kind_detail = models.JSONField(default=dict, blank=True, help_text=(
        "What put it there: an outlier's score, reason and image statistics; a duplicate conflict's group."))
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    round = models.PositiveIntegerField(default=1, help_text="Incremented by an admin's reopen.")
    lease_holder = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    is_gold = models.BooleanField(default=False, help_text="Known label, mixed into queues to measure accuracy.")
    gold_label = models.PositiveSmallIntegerField(choices=Choice.choices, null=True, blank=True)
    settled_label = models.PositiveSmallIntegerField(choices=Choice.choices, null=True, blank=True)
    settled_at = models.DateTimeField(null=True, blank=True)
    settled_by_admin = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                         related_name="+", help_text="Empty when a quorum settled it.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["priority", "id"]
        indexes = [
            models.Index(fields=["status", "is_gold", "priority", "id"], name="review_item_queue"),
            # Handing out: the open items in priority order, walked until one this reviewer may take (LIMIT n), not
            # every open item sorted per request.
            models.Index(fields=["is_gold", "priority", "id"], name="review_item_open_queue",
                         condition=models.Q(status__in=["open", "reopened"])),
        ]

    def __str__(self) -> str:
        return f"review item {self.pk} (face {self.face_id}, {self.status})"

    @property
    def is_settled(self) -> bool:
        return self.status == self.Status.SETTLED

    def lease_is_held_by_other(self, user, now=None) -> bool:
        now = now or timezone.now()
        return (self.lease_holder_id is not None and self.lease_holder_id != user.pk
                and self.lease_expires_at is not None and self.lease_expires_at > now)


class Vote(models.Model):
    item = models.ForeignKey(ReviewItem, on_delete=models.CASCADE, related_name="votes")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="review_votes")
    round = models.PositiveIntegerField(default=1)
    choice = models.PositiveSmallIntegerField(choices=Choice.choices)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["item", "reviewer", "round"], name="review_one_vote_per_reviewer"),
        ]

    def __str__(self) -> str:
        return f"{self.reviewer_id} -> {self.item_id}: {self.choice}"


class VoteUndo(models.Model):
    """A vote its reviewer took back. One per reviewer, item and round: a vote's answer tells whether it settled the
    item, so undoing and voting again until it does would find the other votes; one undo corrects a slip of the key
    and leaves that probe two tries. Kept for the record (the undone choice)."""

    item = models.ForeignKey(ReviewItem, on_delete=models.CASCADE, related_name="undos")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    round = models.PositiveIntegerField(default=1)
    choice = models.PositiveSmallIntegerField(choices=Choice.choices, help_text="The choice taken back.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "reviewer", "round"], name="review_one_undo")]


class Skip(models.Model):
    """A reviewer passed on an item; it is not offered to them again in the same round."""

    item = models.ForeignKey(ReviewItem, on_delete=models.CASCADE, related_name="skips")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    round = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "reviewer", "round"], name="review_one_skip")]


class LabelHistory(models.Model):
    class Kind(models.TextChoices):
        QUORUM = "quorum", "settled by quorum"
        ADMIN = "admin", "settled by an admin"
        UNDO = "undo", "reverted: a settling vote was undone"
        REOPEN = "reopen", "reopened by an admin"

    face = models.ForeignKey(FaceImage, on_delete=models.CASCADE, related_name="label_history")
    item = models.ForeignKey(ReviewItem, null=True, blank=True, on_delete=models.SET_NULL, related_name="history")
    round = models.PositiveIntegerField(default=1, help_text="The item's voting round it belongs to (blind review).")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    old_label = models.PositiveSmallIntegerField(choices=Emotion.choices, null=True, blank=True)
    new_label = models.PositiveSmallIntegerField(choices=Emotion.choices, null=True, blank=True)
    old_excluded = models.BooleanField(default=False)
    new_excluded = models.BooleanField(default=False)
    votes = models.JSONField(default=list, blank=True, help_text="[{reviewer, choice, at}] of the deciding round.")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+", help_text="The admin or reviewer who acted; empty for a quorum.")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "label history"


class GoldAnswer(models.Model):
    """A reviewer's first answer on a gold item: what gold accuracy counts. It is kept when the vote is undone, so
    undo (which works the same on every item) cannot be used to retry a gold answer."""

    item = models.ForeignKey(ReviewItem, on_delete=models.CASCADE, related_name="gold_answers")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    choice = models.PositiveSmallIntegerField(choices=Choice.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "reviewer"], name="review_one_gold_answer")]


class QueueFit(WorkRow):
    """One refit of how the queue weighs its signals, from what reviewers settled (``apps.review.learning``): the
    error rate per (given label, suggestion) pair, and the open items re-ranked by it."""

    settled = models.PositiveIntegerField(default=0, help_text="Settled items it learned from.")
    wrong = models.PositiveIntegerField(default=0, help_text="Of them, items whose label was wrong.")
    model = models.JSONField(default=dict, blank=True, help_text="ml.queue_model.ReviewerModel.as_dict().")
    reranked = models.PositiveIntegerField(default=0, help_text="Open items given a new place in the queue.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", help_text="Empty when settled items triggered it.")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"queue fit {self.pk} ({self.status})"
