"""Reads for the queue: statistics, a reviewer's progress, item detail, agreement and Fleiss' kappa."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, F, OuterRef
from django.utils import timezone

from .choices import UNSURE
from .models import LabelHistory, ReviewItem, ScoringRun, Vote
from .services import OPEN_STATUSES


def review_queue_stats() -> dict:
    by_status = dict(ReviewItem.objects.filter(is_gold=False).values_list("status").annotate(n=Count("pk")))
    now = timezone.now()
    today = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    last_run = ScoringRun.objects.order_by("-created_at").first()
    return {
        "open": by_status.get(ReviewItem.Status.OPEN, 0),
        "reopened": by_status.get(ReviewItem.Status.REOPENED, 0),
        "settled": by_status.get(ReviewItem.Status.SETTLED, 0),
        "disputed": by_status.get(ReviewItem.Status.DISPUTED, 0),
        "gold": ReviewItem.objects.filter(is_gold=True).count(),
        "leased": ReviewItem.objects.filter(lease_expires_at__gt=now).count(),
        "votes": Vote.objects.count(),
        "votes_today": Vote.objects.filter(created_at__gte=today).count(),
        "label_changes": LabelHistory.objects.filter(kind__in=[LabelHistory.Kind.QUORUM, LabelHistory.Kind.ADMIN])
        .exclude(old_label=F("new_label"), old_excluded=F("new_excluded")).count(),
        "last_scoring_run": None if last_run is None else {
            "id": last_run.pk, "status": last_run.status, "progress": last_run.progress,
            "scored": last_run.scored_count, "issues": last_run.issue_count,
            "finished_at": last_run.finished_at,
        },
    }


def review_progress_for(*, user) -> dict:
    """The progress line: open items this user can still vote on, and their votes today."""
    today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    voted = Vote.objects.filter(item=OuterRef("pk"), reviewer=user, round=OuterRef("round"))
    left = ReviewItem.objects.filter(status__in=OPEN_STATUSES, is_gold=False).exclude(Exists(voted)).count()
    return {"items_left": left, "votes_today": Vote.objects.filter(reviewer=user, created_at__gte=today).count()}


def review_item_votes_visible_to(*, item: ReviewItem, user, is_admin: bool) -> bool:
    """Blind voting: a reviewer sees the votes of the current round only after casting their own."""
    if is_admin:
        return True
    return Vote.objects.filter(item=item, reviewer=user, round=item.round).exists()


def review_item_detail(*, item_id: int) -> ReviewItem:
    return (ReviewItem.objects.select_related("face__pixels", "score")
            .prefetch_related("votes__reviewer", "history__actor").get(pk=item_id))


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


def review_agreement() -> AgreementReport:
    """Per reviewer: agreement with settled labels and accuracy on gold items; Fleiss' kappa over the current
    round of every non-gold item with two or more votes ("unsure" is no vote)."""
    today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    votes = (Vote.objects.filter(round=F("item__round"))
             .values_list("reviewer_id", "item_id", "choice", "created_at", "item__status", "item__settled_label",
                          "item__is_gold", "item__gold_label"))
    people = {u.pk: u.get_username() for u in get_user_model().objects.filter(review_votes__isnull=False).distinct()}
    rows: dict[int, ReviewerAgreement] = {}
    per_item: dict[int, Counter] = defaultdict(Counter)
    for reviewer_id, item_id, choice, created, status, settled, is_gold, gold in votes:
        row = rows.setdefault(reviewer_id, ReviewerAgreement(reviewer_id, people.get(reviewer_id, "?")))
        row.votes += 1
        row.votes_today += created >= today
        if choice == UNSURE:
            row.unsure += 1
            continue
        if is_gold:
            row.gold_votes += 1
            row.gold_correct += choice == gold
            continue
        per_item[item_id][choice] += 1
        if status == ReviewItem.Status.SETTLED:
            row.on_settled += 1
            row.agreed += choice == settled
    rated = [c for c in per_item.values() if sum(c.values()) >= 2]
    return AgreementReport(reviewers=sorted(rows.values(), key=lambda r: r.username), kappa=fleiss_kappa(rated),
                           kappa_items=len(rated))


def label_history_rows():
    """Every label change, oldest first, with the face's source for the history export."""
    return LabelHistory.objects.select_related("face__dataset", "actor").order_by("created_at", "pk")
