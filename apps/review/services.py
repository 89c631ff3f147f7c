"""Writes for the queue: leasing items, votes, settling, undo, skip, reopen, gold items.

Concurrency: handing out takes row locks with ``SKIP LOCKED`` so two reviewers never lease the same item, and locks
the reviewer's own user row first, so one reviewer's parallel calls queue up and never lease more than
``REVIEW_PREFETCH`` items between them; every vote locks its item row first, so the last two votes arriving together
settle it once. (``review_item_next_for`` lives here rather than in selectors because it takes a lease, which is a
write.)

Blind review: a vote can be taken back (undo) for ``REVIEW_UNDO_SECONDS`` after it is cast; after that it is *final*,
and only a final counted vote ("unsure" is none) shows its reader the round's votes (``selectors.BlindReview``). So a
reviewer never sees who chose what while they can still change their own answer.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from math import isfinite

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from apps.accounts.roles import Role, user_has_role
from apps.core.errors import ApplicationError
from apps.faces.models import FaceImage, Split

from .choices import NOT_A_FACE, UNSURE, Choice
from .models import GoldAnswer, LabelHistory, LabelScore, ReviewItem, Skip, Vote, VoteUndo

OPEN_STATUSES = (ReviewItem.Status.OPEN, ReviewItem.Status.REOPENED)
UNDO_SECONDS = 120  # the default of REVIEW_UNDO_SECONDS


class ReviewError(ApplicationError):
    """A request the queue refuses; ``code`` picks the HTTP status. ``already_voted``: the caller's vote on the item
    is stored (a resent vote counts as sent); ``vote_final``: the vote can no longer be taken back; ``undo_used``:
    the caller took back a vote on this item in this round already; ``item_leased``: another reviewer holds the item
    now."""

    STATUSES = {"invalid": 400, "not_found": 404, "conflict": 409, "already_voted": 409, "vote_final": 409,
                "undo_used": 409, "item_leased": 409}

    def __init__(self, message: str, code: str = "invalid") -> None:
        super().__init__(message, code=code, status=self.STATUSES[code])


def votes_final_before(now: datetime | None = None) -> datetime:
    """Votes cast at or before this moment are final: past the undo window (``REVIEW_UNDO_SECONDS``)."""
    seconds = getattr(settings, "REVIEW_UNDO_SECONDS", UNDO_SECONDS)
    return (now or timezone.now()) - timedelta(seconds=seconds)


# --- handing out -----------------------------------------------------------------------------------------------

def _available_for(user, now) -> QuerySet[ReviewItem]:
    """Items this user may take now: open, not leased by someone else, not voted on or skipped this round."""
    voted = Vote.objects.filter(item=OuterRef("pk"), reviewer=user, round=OuterRef("round"))
    skipped = Skip.objects.filter(item=OuterRef("pk"), reviewer=user, round=OuterRef("round"))
    return (
        ReviewItem.objects.filter(status__in=OPEN_STATUSES)
        .filter(Q(lease_holder__isnull=True) | Q(lease_expires_at__lte=now) | Q(lease_holder=user))
        .exclude(Exists(voted))
        .exclude(Exists(skipped))
    )


def _lock(queryset: QuerySet[ReviewItem]) -> QuerySet[ReviewItem]:
    # SKIP LOCKED: a row another reviewer is leasing right now is passed over instead of waited for.
    if connection.features.has_select_for_update_skip_locked:
        return queryset.select_for_update(skip_locked=True, of=("self",))
    return queryset.select_for_update()


def _take(user, available: QuerySet[ReviewItem], count: int, now) -> list[int]:
    """Lease the first ``count`` items of ``available`` in queue order (priority, then id) to ``user``; their ids, in
    that order. Gold items take their place in that order by their own label score like any other item, so the order
    a reviewer is served in cannot tell them apart. (One locked walk of the open-queue index per kind, merged: a
    single walk over both kinds would sort every open item.)"""
    if count <= 0:
        return []
    candidates = []
    for gold in (False, True):
        candidates += _lock(available.filter(is_gold=gold).order_by("priority", "pk")).values_list(
            "priority", "pk")[:count]
    ids = [pk for _, pk in sorted(candidates)[:count]]
    if ids:
        expires = now + timedelta(seconds=settings.REVIEW_LEASE_SECONDS)
        ReviewItem.objects.filter(pk__in=ids).update(lease_holder=user, lease_expires_at=expires)
    return ids


def _lock_reviewer(user) -> None:
    """Queue up one reviewer's concurrent calls (several tabs, a script): each sees what the previous one leased."""
    get_user_model().objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True).first()


@transaction.atomic
def review_item_next_for(*, user, count: int = 1) -> list[ReviewItem]:
    """Lease up to ``count`` items to ``user``, most likely mislabelled first; items it already holds come first.
    A reviewer never holds more than ``REVIEW_PREFETCH`` live leases, however many calls arrive at once."""
    count = max(1, min(count, settings.REVIEW_PREFETCH))
    _lock_reviewer(user)
    now = timezone.now()
    available = _available_for(user, now)
    held = list(_lock(available.filter(lease_holder=user, lease_expires_at__gt=now)).order_by("priority", "pk")
                .values_list("pk", flat=True))
    shown = held[:count]
    if shown:  # renew: the reviewer is still looking at them
        ReviewItem.objects.filter(pk__in=shown).update(
            lease_expires_at=now + timedelta(seconds=settings.REVIEW_LEASE_SECONDS))
    wanted = min(count - len(shown), settings.REVIEW_PREFETCH - len(held))
    order = shown + _take(user, available.exclude(pk__in=held) if held else available, wanted, now)
    items = ReviewItem.objects.select_related("face__pixels", "score").in_bulk(order)  # one query for all
    return [items[pk] for pk in order]


# --- votes -----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    """What the current round's votes decide: a settled choice, a dispute, or nothing yet."""

    settled_choice: int | None
    disputed: bool


def votes_outcome(choices: list[int]) -> Outcome:
    """Quorum rule: ``REVIEW_QUORUM`` matching votes settle; "unsure" is no vote; after ``REVIEW_MAX_VOTES`` counted
    votes without a quorum the item is disputed (an admin decides or reopens it)."""
    counted = [c for c in choices if c != UNSURE]
    if counted:
        choice, n = Counter(counted).most_common(1)[0]
        if n >= settings.REVIEW_QUORUM:
            return Outcome(choice, False)
    return Outcome(None, len(counted) >= settings.REVIEW_MAX_VOTES)


def _round_votes(item: ReviewItem) -> list[Vote]:
    return list(Vote.objects.filter(item=item, round=item.round).order_by("created_at", "pk"))


def _votes_record(votes: list[Vote]) -> list[dict]:
    return [{"reviewer": v.reviewer.get_username(), "reviewer_id": v.reviewer_id, "choice": v.choice,
             "choice_name": Choice(v.choice).label, "at": v.created_at.isoformat()} for v in votes]


def _apply_label(*, item: ReviewItem, choice: int, kind: str, votes: list[Vote], actor=None) -> LabelHistory:
    """Set the face's current label (or exclude it) and record the change. ``original_label`` is never touched."""
    face = FaceImage.objects.select_for_update().get(pk=item.face_id)
    old_label, old_excluded = face.current_label, face.excluded
    if choice == NOT_A_FACE:
        face.excluded = True
    else:
        face.current_label = choice
        face.excluded = False
    face.save(update_fields=["current_label", "excluded", "updated_at"])
    now = timezone.now()
    item.status = ReviewItem.Status.SETTLED
    item.settled_label = choice
    item.settled_at = now
    item.settled_by_admin = actor if kind == LabelHistory.Kind.ADMIN else None
    item.lease_holder = None
    item.lease_expires_at = None
    item.save()
    from .learning import queue_fit_when_due

    transaction.on_commit(queue_fit_when_due)  # the queue learns from every settled item
    return LabelHistory.objects.create(
        face=face, item=item, round=item.round, kind=kind, old_label=old_label, new_label=face.current_label,
        old_excluded=old_excluded, new_excluded=face.excluded, votes=_votes_record(votes), actor=actor, created_at=now,
    )


def _locked_item(item_id: int) -> ReviewItem:
    try:
        return ReviewItem.objects.select_for_update().get(pk=item_id)
    except ReviewItem.DoesNotExist:
        raise _not_found(item_id) from None


def _not_found(item_id: int) -> ReviewError:
    return ReviewError(f"no review item {item_id}", "not_found")


def _require_lease(user, item: ReviewItem) -> None:
    """Only the lease holder (its lease, even just run out, as long as nobody took the item since) or an admin may
    act on an item; to anyone else it is "not found", as a missing id is, so its state cannot be probed."""
    if item.lease_holder_id != user.pk and not user_has_role(user, Role.ADMIN):
        raise _not_found(item.pk)


@transaction.atomic
def review_vote_cast(*, user, item_id: int, choice: int) -> Vote:
    """Record ``user``'s vote and settle the item when the quorum agrees. Gold items never settle; each reviewer's
    first counted answer is kept as a ``GoldAnswer`` (what gold accuracy counts).

    Answers: the caller's vote already stored in the item's round is 409 ``already_voted`` (a resent vote counts as
    sent); an item not leased to the caller (someone else's, settled, disputed, gold or missing) is 404, the same
    answer for all; admins may vote on any open item and are told why a closed one takes no votes."""
    if choice not in Choice.values:
        raise ReviewError(f"choice must be 0-{UNSURE}")
    item = _locked_item(item_id)  # serialises votes on this item: the quorum is reached exactly once
    if Vote.objects.filter(item=item, reviewer=user, round=item.round).exists():
        raise ReviewError(f"you already voted on item {item.pk}", "already_voted")
    _require_lease(user, item)
    if item.status not in OPEN_STATUSES:  # an admin's vote (a reviewer holds no lease on a closed item)
        raise ReviewError(f"item {item.pk} is {item.status}; it takes no more votes", "conflict")
    try:
        with transaction.atomic():
            vote = Vote.objects.create(item=item, reviewer=user, round=item.round, choice=choice)
    except IntegrityError:
        raise ReviewError(f"you already voted on item {item.pk}", "already_voted") from None
    if item.lease_holder_id is not None:
        item.lease_holder = None
        item.lease_expires_at = None
        item.save(update_fields=["lease_holder", "lease_expires_at", "updated_at"])
    if item.is_gold:
        if choice != UNSURE:  # "unsure" is no answer: voting it first cannot dodge being scored
            GoldAnswer.objects.get_or_create(item=item, reviewer=user, defaults={"choice": choice})
    else:
        votes = _round_votes(item)
        outcome = votes_outcome([v.choice for v in votes])
        if outcome.settled_choice is not None:
            _apply_label(item=item, choice=outcome.settled_choice, kind=LabelHistory.Kind.QUORUM, votes=votes)
        elif outcome.disputed:
            item.status = ReviewItem.Status.DISPUTED
            item.save(update_fields=["status", "updated_at"])
    return vote


def _revert_settlement(*, item: ReviewItem, votes: list[Vote], actor) -> LabelHistory:
    """Put the face back as it was before this item settled, and record that."""
    settled = item.history.filter(kind__in=[LabelHistory.Kind.QUORUM, LabelHistory.Kind.ADMIN]).last()
    face = FaceImage.objects.select_for_update().get(pk=item.face_id)
    old_label, old_excluded = face.current_label, face.excluded
    if settled is not None:
        face.current_label, face.excluded = settled.old_label, settled.old_excluded
        face.save(update_fields=["current_label", "excluded", "updated_at"])
    item.status = ReviewItem.Status.REOPENED
    item.settled_label = None
    item.settled_at = None
    item.settled_by_admin = None
    item.save()
    return LabelHistory.objects.create(
        face=face, item=item, round=item.round, kind=LabelHistory.Kind.UNDO, old_label=old_label,
        new_label=face.current_label, old_excluded=old_excluded, new_excluded=face.excluded,
        votes=_votes_record(votes), actor=actor,
    )


@transaction.atomic
def review_vote_undo(*, user) -> Vote:
    """Withdraw ``user``'s most recent vote, within ``REVIEW_UNDO_SECONDS`` of casting it (after that it is final:
    409 ``vote_final``, since its round's votes may have been shown to the voter), once per item and round (409
    ``undo_used``: a vote's answer tells whether it settled the item, so repeated undos would probe for the other
    votes). If the item had settled and no longer has a quorum, it reopens and the face's label goes back, with a
    history record. The item is leased back to the user to vote again; while another reviewer holds a live lease on
    it the undo is refused (409 ``item_leased``). Nothing changes on a refusal.

    Gold items go through exactly the same steps and answer (the vote is removed, the item leased back), so an undo
    cannot tell a gold item from another. What it cannot do on a gold item is change the reviewer's gold score: the
    first counted answer, kept as a ``GoldAnswer``, is what gold accuracy counts (an undo-and-retry would otherwise be
    a way to probe for the answer)."""
    now = timezone.now()
    last = Vote.objects.filter(reviewer=user).order_by("-created_at", "-pk").first()
    if last is None:
        raise ReviewError("you have no vote to undo", "not_found")
    if last.created_at <= votes_final_before(now):
        raise ReviewError("your last vote is final: it can be taken back only in the first "
                          f"{getattr(settings, 'REVIEW_UNDO_SECONDS', UNDO_SECONDS)} seconds", "vote_final")
    item = _locked_item(last.item_id)
    vote = Vote.objects.select_for_update().filter(pk=last.pk, round=item.round).first()
    if vote is None:
        raise ReviewError("your last vote belongs to a closed round (an admin reopened the item)", "conflict")
    if item.settled_by_admin_id is not None:
        raise ReviewError("an admin decided this item; ask an admin to reopen it", "conflict")
    if VoteUndo.objects.filter(item=item, reviewer=user, round=item.round).exists():
        raise ReviewError("you took back a vote on this item in this round already; this one stands", "undo_used")
    if item.lease_is_held_by_other(user, now):
        raise ReviewError("another reviewer is looking at this item now; your vote stands", "item_leased")
    vote.delete()
    VoteUndo.objects.create(item=item, reviewer=user, round=item.round, choice=vote.choice, created_at=now)
    remaining = _round_votes(item)
    outcome = votes_outcome([v.choice for v in remaining])
    if item.is_settled and outcome.settled_choice != item.settled_label:
        _revert_settlement(item=item, votes=remaining, actor=user)
    elif item.status == ReviewItem.Status.DISPUTED and not outcome.disputed:
        item.status = ReviewItem.Status.REOPENED
    if item.status in OPEN_STATUSES:
        item.lease_holder = user
        item.lease_expires_at = now + timedelta(seconds=settings.REVIEW_LEASE_SECONDS)
    item.save()
    vote.pk = None  # deleted; hand back an unsaved copy for the response
    return vote


@transaction.atomic
def review_item_skip(*, user, item_id: int) -> Skip:
    item = _locked_item(item_id)
    existing = Skip.objects.filter(item=item, reviewer=user, round=item.round).first()
    if existing is not None:  # skipping twice stays harmless (the first skip gave the lease back)
        return existing
    _require_lease(user, item)
    skip, _ = Skip.objects.get_or_create(item=item, reviewer=user, round=item.round)
    if item.lease_holder_id == user.pk:
        item.lease_holder = None
        item.lease_expires_at = None
        item.save(update_fields=["lease_holder", "lease_expires_at", "updated_at"])
    return skip


@transaction.atomic
def review_item_reopen(*, admin, item_id: int) -> ReviewItem:
    """Start a new round on a settled or disputed item. The face keeps its current label until the new round
    settles; earlier rounds' votes stay for the record but no longer count."""
    item = _locked_item(item_id)
    if item.status in OPEN_STATUSES:
        raise ReviewError(f"item {item.pk} is already open", "conflict")
    face = item.face
    LabelHistory.objects.create(  # the last entry of the round it closes
        face=face, item=item, round=item.round, kind=LabelHistory.Kind.REOPEN, old_label=face.current_label,
        new_label=face.current_label, old_excluded=face.excluded, new_excluded=face.excluded,
        votes=_votes_record(_round_votes(item)), actor=admin,
    )
    item.status = ReviewItem.Status.REOPENED
    item.round += 1
    item.settled_label = None
    item.settled_at = None
    item.settled_by_admin = None
    item.lease_holder = None
    item.lease_expires_at = None
    item.save()
    return item


@transaction.atomic
def review_item_settle_admin(*, admin, item_id: int, choice: int) -> LabelHistory:
    """An admin decides an item (typically a disputed one) directly."""
    if choice not in Choice.values or choice == UNSURE:
        raise ReviewError(f"choice must be 0-{NOT_A_FACE}")
    item = _locked_item(item_id)
    if item.is_gold:
        raise ReviewError("gold items do not settle; change the gold label instead", "conflict")
    return _apply_label(item=item, choice=choice, kind=LabelHistory.Kind.ADMIN, votes=_round_votes(item),
                        actor=admin)


@transaction.atomic
def review_gold_set(*, face_id: int, label: int) -> ReviewItem:
    """Mark a face as gold with a known answer (0-7). Gold items never change the face's label.

    A gold item must be indistinguishable from the queue's other items, so gold faces come only from labelled
    Training faces with a label score (never PublicTest, PrivateTest or an upload, which a lease would hand to
    reviewers): the item carries the face's latest score (probabilities, suggestion) and takes its place in the
    queue by that score's quality, as every item does. Faces the scoring run flagged (low quality) are served soonest;
    a confident face would wait at the end of the queue."""
    if label not in Choice.values or label == UNSURE:
        raise ReviewError(f"gold label must be 0-{NOT_A_FACE}")
    face = FaceImage.objects.filter(pk=face_id).first()
    if face is None:
        raise ReviewError(f"no face {face_id}", "not_found")
    if face.split != Split.TRAINING or face.excluded or face.current_label is None:
        raise ReviewError(f"face {face_id} is not a labelled Training face; gold faces come from those only")
    score = LabelScore.objects.filter(face_id=face_id).order_by("-run__created_at", "-pk").first()
    if score is None:
        raise ReviewError(f"face {face_id} has no label score yet; gold faces come from scored Training faces")
    item, _ = ReviewItem.objects.select_for_update().get_or_create(face_id=face_id)
    if item.status not in OPEN_STATUSES:
        raise ReviewError(f"face {face_id} has a {item.status} review item; reopen it first", "conflict")
    item.is_gold = True
    item.gold_label = label
    item.score, item.priority = score, score.quality
    item.suggested_label, item.suggested_probability = score.suggested_label, score.suggested_probability
    item.save()
    from .learning import review_queue_rerank

    review_queue_rerank(item_ids=[item.pk])  # placed by the same rule as every open item
    item.refresh_from_db(fields=["priority"])
    return item


# --- why an item is in the queue ------------------------------------------------------------------------------------

@transaction.atomic
def review_item_flag(*, face: FaceImage, kind: str, detail: dict, priority: float) -> ReviewItem:
    """Put ``face`` in the queue for ``kind`` (``ReviewItem.Kind``: label_issue, outlier, duplicate_conflict) with
    ``detail`` (what put it there, shown to reviewers) at ``priority`` (lower is served first). A face without an item
    gets an open one. An open or reopened item takes the new kind and detail and keeps its votes, round and lease; its
    place in the queue becomes the more urgent of the two priorities, so a second reason never delays a face. Settled
    and disputed items are decided (or an admin's to decide) and gold items must look like any other: those are
    returned unchanged."""
    if kind not in ReviewItem.Kind.values:
        raise ReviewError(f"unknown item kind {kind!r}; available: {', '.join(ReviewItem.Kind.values)}")
    if not isinstance(detail, dict):
        raise ReviewError("detail must be a dict")
    if not isinstance(priority, (int, float)) or not isfinite(priority):
        raise ReviewError(f"priority must be a finite number, not {priority!r}")
    item = ReviewItem.objects.select_for_update().filter(face_id=face.pk).first()
    if item is None:
        try:
            with transaction.atomic():  # a concurrent flag of the same face: take the item it created
                return ReviewItem.objects.create(face_id=face.pk, kind=kind, kind_detail=detail,
                                                 priority=float(priority))
        except IntegrityError:
            item = ReviewItem.objects.select_for_update().get(face_id=face.pk)
    if item.status not in OPEN_STATUSES or item.is_gold:
        return item
    item.kind, item.kind_detail = kind, detail
    item.priority = min(item.priority, float(priority))
    item.save(update_fields=["kind", "kind_detail", "priority", "updated_at"])
    return item
