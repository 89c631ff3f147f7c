"""Reads for the queue: statistics, a reviewer's progress, item detail, blind review, agreement and Fleiss' kappa.

Blind review and gold items, the rules every read here keeps (admins see everything):

- A round's votes, who chose what, are shown to anyone but an admin only once they hold a *final counted* vote in
  that round (``BlindReview``): not "unsure", and past the undo window (``services.votes_final_before``), so nobody
  can read the others' answers and then change their own. This holds for the item's ``votes``, the votes and undo
  actors in its history, the history and FER+ exports, the gallery's face page and API (researchers included), and
  the agreement figures, which reviewers get for themselves only and, for Fleiss' kappa, from decided rounds only.
- A reviewer reads an item only while it is leased to them or once they have voted on it; any other id is "not
  found", whether or not it exists (``review_item_for``).
- Nothing a reviewer sees tells a gold item from another: no gold figures (gold accuracy, the gold count), the
  status counts and progress count gold items like the others, and on a gold item a reviewer sees only their own
  vote.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from apps.accounts.roles import Role, user_has_role
from apps.core.errors import NotFound
from apps.faces.models import FaceImage

from .choices import UNSURE
from .models import GoldAnswer, LabelHistory, ReviewItem, ScoringRun, Vote
from .services import OPEN_STATUSES, votes_final_before

# A round that takes no more votes: its outcome is the face's label (settled) or an admin's to decide (disputed).
DECIDED_STATUSES = (ReviewItem.Status.SETTLED, ReviewItem.Status.DISPUTED)


def review_queue_stats(*, user) -> dict:
    """Queue figures. The status counts include gold items (always open), as the reviewer's progress does, so that
    no difference between them gives the gold count away; admins get that count on its own."""
    by_status = dict(ReviewItem.objects.values_list("status").annotate(n=Count("pk")))
    now = timezone.now()
    today = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    last_run = ScoringRun.objects.order_by("-created_at").first()
    return {
        "open": by_status.get(ReviewItem.Status.OPEN, 0),
        "reopened": by_status.get(ReviewItem.Status.REOPENED, 0),
        "settled": by_status.get(ReviewItem.Status.SETTLED, 0),
        "disputed": by_status.get(ReviewItem.Status.DISPUTED, 0),
        "gold": ReviewItem.objects.filter(is_gold=True).count() if user_has_role(user, Role.ADMIN) else None,
        "leased": ReviewItem.objects.filter(lease_expires_at__gt=now).count(),
        "votes": Vote.objects.count(),
        "votes_today": Vote.objects.filter(created_at__gte=today).count(),
        "label_changes": LabelHistory.objects.filter(kind__in=[LabelHistory.Kind.QUORUM, LabelHistory.Kind.ADMIN])
        .exclude(old_label=F("new_label"), old_excluded=F("new_excluded")).count(),
        "last_scoring_run": None if last_run is None else {
            "id": last_run.pk, "status": last_run.status, "method": last_run.method, "progress": last_run.progress,
            "scored": last_run.scored_count, "issues": last_run.issue_count,
            "finished_at": last_run.finished_at,
        },
        **review_queue_source(),
    }


METHOD_SHORT = {ScoringRun.Method.IN_SAMPLE: "in-sample", ScoringRun.Method.OUT_OF_FOLD: "out-of-fold",
                ScoringRun.Method.SHORT_RUN: "short run", ScoringRun.Method.DYNAMICS: "training dynamics"}


def _run_summary(run: ScoringRun | None) -> dict | None:
    if run is None:
        return None
    return {"id": run.pk, "status": run.status, "method": run.method, "method_label": run.get_method_display(),
            "method_short": METHOD_SHORT.get(run.method, run.method), "blend_active": run.blend_active,
            "in_sample": run.method == ScoringRun.Method.IN_SAMPLE, "ranking": run.ranking,
            "filter_by": run.filter_by, "flagged": run.issue_count, "scored": run.scored_count,
            "model_version": run.model_version.name if run.model_version else None,
            "fraction": (run.progress or {}).get("fraction"), "eta_seconds": (run.progress or {}).get("eta_seconds"),
            "finished_at": run.finished_at}


def review_queue_source() -> dict:
    """Which scoring run filled the queue (the latest that succeeded: its ranking, in-sample or out-of-fold, how many
    faces it flagged), and a newer run that is still working on replacing it."""
    runs = ScoringRun.objects.select_related("model_version")
    filled = (runs.filter(status=ScoringRun.Status.SUCCEEDED)
              .order_by(F("finished_at").desc(nulls_last=True), "-pk").first())
    pending = runs.filter(status__in=[ScoringRun.Status.QUEUED, ScoringRun.Status.RUNNING])
    if filled is not None:
        pending = pending.filter(created_at__gte=filled.created_at).exclude(pk=filled.pk)
    return {"queue_run": _run_summary(filled), "refining_run": _run_summary(pending.order_by("created_at", "pk")
                                                                             .first())}


def review_progress_for(*, user) -> dict:
    """The progress line: open items this user can still vote on, and their votes today. Gold items count like the
    others, so a vote moves the count the same way whatever the item."""
    today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    voted = Vote.objects.filter(item=OuterRef("pk"), reviewer=user, round=OuterRef("round"))
    left = ReviewItem.objects.filter(status__in=OPEN_STATUSES).exclude(Exists(voted)).count()
    return {"items_left": left, "votes_today": Vote.objects.filter(reviewer=user, created_at__gte=today).count()}


# --- scoring runs ----------------------------------------------------------------------------------------------

def scoring_run_list() -> QuerySet[ScoringRun]:
    """Scoring runs, newest first."""
    return ScoringRun.objects.select_related("model_version").order_by("-created_at", "-id")


def scoring_run_get(*, run_id: int) -> ScoringRun:
    """Run ``run_id``; ``NotFound`` when there is none."""
    run = scoring_run_list().filter(pk=run_id).first()
    if run is None:
        raise NotFound(f"no scoring run {run_id}")
    return run


# --- reading items, blind --------------------------------------------------------------------------------------

def review_items_visible_to(*, user) -> QuerySet[ReviewItem]:
    """Admins: every item. Reviewers: the items leased to them now and those they have voted on (in any round), the
    same reach over faces as ``apps.faces.selectors.faces_visible_to``."""
    if user_has_role(user, Role.ADMIN):
        return ReviewItem.objects.all()
    if not user_has_role(user, Role.REVIEWER):
        return ReviewItem.objects.none()
    leased = Q(lease_holder=user, lease_expires_at__gt=timezone.now())
    return ReviewItem.objects.filter(leased | Exists(Vote.objects.filter(item=OuterRef("pk"), reviewer=user)))


def review_item_detail(*, item_id: int) -> ReviewItem:
    """An item with what its answers show, without an access check: for the item a caller has just acted on (the
    undo answer); everything else reads items through ``review_item_for``."""
    return (ReviewItem.objects.select_related("face__pixels", "score")
            .prefetch_related("votes__reviewer", "history__actor").get(pk=item_id))


def review_item_for(*, user, item_id: int) -> ReviewItem:
    """An item with its face, score, votes and history, if ``user`` may read it; ``NotFound`` (the same answer as
    for an id that does not exist) otherwise."""
    try:
        return (review_items_visible_to(user=user).select_related("face__pixels", "score")
                .prefetch_related("votes__reviewer", "history__actor").get(pk=item_id))
    except ReviewItem.DoesNotExist:
        raise NotFound(f"no review item {item_id}") from None


@dataclass(frozen=True)
class HistoryEntry:
    """A ``LabelHistory`` row as one caller may see it: ``votes`` is None for a round they have no vote in."""

    id: int
    item_id: int | None
    round: int
    kind: str
    old_label: int | None
    new_label: int | None
    old_excluded: bool
    new_excluded: bool
    votes: list[dict] | None
    actor: str
    created_at: datetime


@dataclass(frozen=True)
class BlindReview:
    """What one caller may see of votes. Build it with ``blind_review_for``.

    A round's votes (names and choices) are the caller's to see once they hold a final counted vote in that round
    (not "unsure", past the undo window: one they can no longer take back); admins see every round. In the history,
    an entry of a round the caller does not see keeps its labels but loses its votes and, for an undo, its actor (a
    voter of that round); while that round still takes votes its entries are left out altogether, because a
    settlement and its undo would tell the remaining votes' choice. On a gold item a reviewer sees only their own
    vote: others' votes would pile up past a quorum that never settles it.
    """

    is_admin: bool
    user_id: int | None
    voted: frozenset[tuple[int, int]] = frozenset()  # (item id, round) the caller has a final counted vote in

    def sees_round(self, item_id: int | None, round_: int) -> bool:
        return self.is_admin or (item_id, round_) in self.voted

    def current_votes(self, item: ReviewItem) -> list[Vote] | None:
        """The current round's votes, None while they are hidden from the caller."""
        if not self.sees_round(item.pk, item.round):
            return None
        votes = [v for v in item.votes.all() if v.round == item.round]
        if item.is_gold and not self.is_admin:
            votes = [v for v in votes if v.reviewer_id == self.user_id]
        return votes

    def entry(self, entry: LabelHistory, item: ReviewItem | None) -> HistoryEntry | None:
        """``entry`` as the caller may see it, or None when it is not theirs to see at all."""
        shown = self.sees_round(entry.item_id, entry.round)
        if not shown and item is not None and entry.round == item.round and item.status not in DECIDED_STATUSES:
            return None
        actor = entry.actor.get_username() if entry.actor_id else ""
        return HistoryEntry(
            id=entry.pk, item_id=entry.item_id, round=entry.round, kind=entry.kind, old_label=entry.old_label,
            new_label=entry.new_label, old_excluded=entry.old_excluded, new_excluded=entry.new_excluded,
            votes=entry.votes if shown else None,
            actor=actor if shown or entry.kind != LabelHistory.Kind.UNDO else "",
            created_at=entry.created_at,
        )

    def history(self, item: ReviewItem) -> list[HistoryEntry]:
        return [e for e in (self.entry(h, item) for h in item.history.all()) if e is not None]


def blind_review_for(*, user, item_ids: Iterable[int] | None = None) -> BlindReview:
    """The blind-review view of ``user`` (of the given items only, when ``item_ids`` is set), whatever their roles:
    a researcher who never voted sees no round's votes."""
    if user_has_role(user, Role.ADMIN):
        return BlindReview(is_admin=True, user_id=user.pk)
    if getattr(user, "pk", None) is None:
        return BlindReview(is_admin=False, user_id=None)
    votes = Vote.objects.filter(reviewer=user, created_at__lte=votes_final_before()).exclude(choice=UNSURE)
    if item_ids is not None:
        votes = votes.filter(item_id__in=list(item_ids))
    return BlindReview(is_admin=False, user_id=getattr(user, "pk", None),
                       voted=frozenset(votes.values_list("item_id", "round")))


# --- agreement ---------------------------------------------------------------------------------------------------

def fleiss_kappa(items: list[Counter]) -> float | None:
    """Fleiss' kappa over items rated by a varying number (>= 2) of raters; ``None`` when undefined."""
    items = [c for c in items if sum(c.values()) >= 2]
    if not items:
        return None
    totals: Counter = Counter()
    agreement = 0.0
    for counts in items:
        n = sum(counts.values())
        agreement += (sum(k * k for k in counts.values()) - n) / (n * (n - 1))
        totals.update(counts)
    p_bar = agreement / len(items)
    all_votes = sum(totals.values())
    p_e = sum((k / all_votes) ** 2 for k in totals.values())
    if p_e >= 1.0:
        return None  # everyone always chose the same category: chance agreement is total
    return (p_bar - p_e) / (1 - p_e)


@dataclass
class ReviewerAgreement:
    reviewer_id: int
    username: str
    votes: int = 0
    votes_today: int = 0
    unsure: int = 0
    on_settled: int = 0
    agreed: int = 0
    gold_votes: int = 0
    gold_correct: int = 0

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.on_settled if self.on_settled else None

    @property
    def gold_accuracy(self) -> float | None:
        return self.gold_correct / self.gold_votes if self.gold_votes else None


@dataclass
class AgreementReport:
    reviewers: list[ReviewerAgreement] = field(default_factory=list)
    kappa: float | None = None
    kappa_items: int = 0
    gold: bool = False  # whether the gold figures are the reader's to see (admins only)


def review_agreement(*, user) -> AgreementReport:
    """Per reviewer: agreement with settled labels and accuracy on gold items; Fleiss' kappa over the current
    round of every non-gold item with two or more votes ("unsure" is no vote).

    Admins get every reviewer, gold accuracy (from each reviewer's first answer, ``GoldAnswer``) and kappa over
    every round. A reviewer gets their own row without gold figures, and kappa over decided rounds only, so that
    nothing moves while a round is still being voted on."""
    is_admin = user_has_role(user, Role.ADMIN)
    today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    votes = Vote.objects.filter(round=F("item__round"))
    if not is_admin:
        votes = votes.filter(Q(reviewer=user) | Q(item__status__in=DECIDED_STATUSES))
    people = {u.pk: u.get_username() for u in get_user_model().objects.filter(review_votes__isnull=False).distinct()}
    rows: dict[int, ReviewerAgreement] = {}
    per_item: dict[int, Counter] = defaultdict(Counter)
    for reviewer_id, item_id, choice, created, status, settled, is_gold in votes.values_list(
            "reviewer_id", "item_id", "choice", "created_at", "item__status", "item__settled_label", "item__is_gold"):
        if not is_gold and choice != UNSURE and (is_admin or status in DECIDED_STATUSES):
            per_item[item_id][choice] += 1
        if not is_admin and reviewer_id != user.pk:
            continue
        row = rows.setdefault(reviewer_id, ReviewerAgreement(reviewer_id, people.get(reviewer_id, "?")))
        row.votes += 1
        row.votes_today += created >= today
        if choice == UNSURE:
            row.unsure += 1
        elif not is_gold and status == ReviewItem.Status.SETTLED:
            row.on_settled += 1
            row.agreed += choice == settled
    if is_admin:
        answers = GoldAnswer.objects.filter(item__is_gold=True).exclude(choice=UNSURE)
        for reviewer_id, choice, gold in answers.values_list("reviewer_id", "choice", "item__gold_label"):
            row = rows.setdefault(reviewer_id, ReviewerAgreement(reviewer_id, people.get(reviewer_id, "?")))
            row.gold_votes += 1
            row.gold_correct += choice == gold
    rated = [c for c in per_item.values() if sum(c.values()) >= 2]
    return AgreementReport(reviewers=sorted(rows.values(), key=lambda r: r.username), kappa=fleiss_kappa(rated),
                           kappa_items=len(rated), gold=is_admin)


def label_history_for(*, user, faces: QuerySet[FaceImage]) -> Iterator[tuple[FaceImage, HistoryEntry]]:
    """Every label change of ``faces`` (the faces the caller may see), oldest first, with its face (and dataset),
    as ``user`` may see it (``BlindReview``)."""
    blind = blind_review_for(user=user)
    entries = (LabelHistory.objects.filter(face__in=faces).select_related("face__dataset", "actor", "item")
               .order_by("created_at", "pk"))
    for entry in entries.iterator(chunk_size=2000):
        shown = blind.entry(entry, entry.item)
        if shown is not None:
            yield entry.face, shown


# --- why an item is in the queue ------------------------------------------------------------------------------------

def kind_reasons(item: ReviewItem) -> list[str]:
    """The reason an outlier or duplicate-conflict item carries in its ``kind_detail`` (a label issue's reasons are
    its score's)."""
    detail = item.kind_detail or {}
    if item.kind == ReviewItem.Kind.OUTLIER:
        why = detail.get("reason") or "far from the other faces"
        score = detail.get("score")
        return [f"an outlier, maybe not a face: {why}"
                + (f" (outlier score {score:.2f})" if isinstance(score, (int, float)) else "")]
    if item.kind == ReviewItem.Kind.DUPLICATE_CONFLICT:
        return [detail.get("reason") or "a near-duplicate of other faces that carry a different label"]
    return []


def item_reasons(item: ReviewItem, reviewer_model=None) -> list[str]:
    """What put ``item`` in the queue, in words a reviewer can check against the face: why an outlier or a duplicate
    conflict is there (``kind_reasons``), what the model reads and how sure it is of the label, how a short run saw
    the label along its training (when the item's run was one), and how often reviewers found this label wrong when
    the model read the same (once the queue has learnt from them). Built from the item's kind, score and the queue's
    reviewer model only, so a gold item gets its reasons like any other."""
    from ml.labels import CLASSES

    reasons = kind_reasons(item)
    score = item.score
    if score is None:
        return reasons
    given, suggested = score.given_label, score.suggested_label
    probs = score.probabilities or []
    if suggested != given and len(probs) > max(given, suggested):
        reasons.append(f"the model reads {CLASSES[suggested]} at {probs[suggested]:.2f}, "
                       f"the label {CLASSES[given]} at {probs[given]:.2f}")
    elif len(probs) > given:
        reasons.append(f"the model agrees with {CLASSES[given]}, but only at {probs[given]:.2f}")
    signals = score.signals or {}
    if signals.get("epochs"):
        reasons.append(f"a short training run's margin for {CLASSES[given]} was negative in "
                       f"{signals['negative_epochs']} of {signals['epochs']} epochs")
    if signals.get("snapshots") and suggested != given:
        reasons.append(f"it read {CLASSES[suggested]} in {signals['snapshots_agree']} of its "
                       f"{signals['snapshots']} snapshots")
    if reviewer_model is not None and suggested != given:
        count = int(reviewer_model.counts[given, suggested])
        if count:
            wrong = int(reviewer_model.wrong[given, suggested])
            reasons.append(f"reviewers found {wrong} of {count} {CLASSES[given]} labels the model read as "
                           f"{CLASSES[suggested]} wrong")
    return reasons
