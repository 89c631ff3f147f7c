"""Grid review: a page of faces that share a current label; the reviewer marks those that do not belong.

Every face on a submitted page is a vote: a marked face for the class it was given, an unmarked one for the page's
label (it confirms it). Each vote goes through ``services.review_vote_cast``, so quorum, gold, blind review and "a
resent vote counts as sent" are exactly the one-by-one page's; a page submitted twice counts once. Leasing reuses the
one-by-one queue's helpers (``services._take``: SKIP LOCKED, gold items placed by their own score), restricted to one
label, so gold items come in the same proportion and look the same. (Leasing is a write, so it lives here beside the
submit service rather than in selectors.)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, QuerySet
from django.utils import timezone

from ml.labels import NUM_CLASSES

from .choices import Choice
from .models import ReviewItem
from .services import ReviewError, _available_for, _lock, _lock_reviewer, _take, review_vote_cast

GRID_SIZE_MIN, GRID_SIZE_MAX, GRID_SIZE_DEFAULT = 24, 48, 36
# One reviewer's live leases, all pages and modes together: a page left unsubmitted holds its faces until their leases
# run out (REVIEW_LEASE_SECONDS), so switching labels then gets a smaller page rather than hoarding the queue.
GRID_LEASES_MAX = GRID_SIZE_MAX


@dataclass(frozen=True)
class GridPage:
    """A leased page: ``label`` is None when nothing is left for the reviewer. ``labels``: (label, faces available
    to this reviewer with it), most first."""

    label: int | None
    items: list[ReviewItem]
    labels: list[tuple[int, int]]


@dataclass(frozen=True)
class GridMark:
    """One face of a submitted page: ``choice`` None when it was left unmarked (a vote for the page's label)."""

    item_id: int
    choice: int | None = None


@dataclass(frozen=True)
class GridVoteResult:
    """What became of one face's vote. ``result``: ``recorded``; ``already_voted`` (stored by an earlier submit: it
    counts as sent); ``label_changed`` (unmarked, but the face no longer carries the page's label: no vote); or the
    vote service's refusal code (``not_found``, ``conflict``). ``item_status`` and ``settled_label`` as the one-by-one
    vote answer gives them, for recorded votes only."""

    item_id: int
    choice: int
    result: str
    item_status: str | None = None
    settled_label: int | None = None

    @property
    def stored(self) -> bool:
        return self.result in ("recorded", "already_voted")


def _labelled(queryset: QuerySet[ReviewItem]) -> QuerySet[ReviewItem]:
    return queryset.filter(face__current_label__isnull=False, face__excluded=False)


def _label_counts(queryset: QuerySet[ReviewItem]) -> list[tuple[int, int]]:
    rows = queryset.values_list("face__current_label").annotate(n=Count("pk")).order_by("-n", "face__current_label")
    return [(label, n) for label, n in rows]


def _check_size(size: int) -> int:
    if not GRID_SIZE_MIN <= size <= GRID_SIZE_MAX:
        raise ReviewError(f"size must be {GRID_SIZE_MIN}-{GRID_SIZE_MAX}")
    return size


@transaction.atomic
def review_grid_lease(*, user, size: int = GRID_SIZE_DEFAULT, label: int | None = None) -> GridPage:
    """Lease up to ``size`` open items whose face's current label is ``label`` to ``user``, most likely mislabelled
    first; items of that label it already holds come first (a reload shows the same page). Without ``label``: the
    label of most items the user holds, else the label with most items available to them."""
    _check_size(size)
    if label is not None and not 0 <= label < NUM_CLASSES:
        raise ReviewError(f"label must be 0-{NUM_CLASSES - 1}")
    _lock_reviewer(user)  # one reviewer's parallel calls queue up, as in review_item_next_for
    now = timezone.now()
    available = _labelled(_available_for(user, now))
    held = available.filter(lease_holder=user, lease_expires_at__gt=now)
    counts = _label_counts(available)
    if label is None:
        mine = _label_counts(held)
        label = mine[0][0] if mine else (counts[0][0] if counts else None)
    if label is None:
        return GridPage(label=None, items=[], labels=counts)
    held_ids = list(_lock(held).order_by("priority", "pk").values_list("pk", "face__current_label"))
    shown = [pk for pk, face_label in held_ids if face_label == label][:size]
    if shown:  # renew: the reviewer is still looking at them
        ReviewItem.objects.filter(pk__in=shown).update(
            lease_expires_at=now + timedelta(seconds=settings.REVIEW_LEASE_SECONDS))
    wanted = min(size - len(shown), GRID_LEASES_MAX - len(held_ids))
    of_label = available.filter(face__current_label=label).exclude(pk__in=[pk for pk, _ in held_ids])
    order = shown + _take(user, of_label, wanted, now)
    items = ReviewItem.objects.select_related("face__pixels").in_bulk(order)
    return GridPage(label=label, items=[items[pk] for pk in order], labels=counts)


def _check_marks(label: int, marks: list[GridMark]) -> None:
    if not 0 <= label < NUM_CLASSES:
        raise ReviewError(f"label must be 0-{NUM_CLASSES - 1}")
    if not marks:
        raise ReviewError("a page has at least one face")
    if len(marks) > GRID_SIZE_MAX:
        raise ReviewError(f"a page has at most {GRID_SIZE_MAX} faces")
    if len({m.item_id for m in marks}) != len(marks):
        raise ReviewError("each face appears once on a page")
    bad = sorted({m.choice for m in marks if m.choice is not None and m.choice not in Choice.values})
    if bad:
        raise ReviewError(f"choice must be 0-{max(Choice.values)}, not {bad}")


@transaction.atomic
def review_grid_page_submit(*, user, label: int, marks: list[GridMark]) -> list[GridVoteResult]:
    """Record a submitted page: one vote per face through ``review_vote_cast`` (a mark for its class, an unmarked
    face for ``label``), in item order so that two pages locking the same rows cannot deadlock. A face the vote
    service refuses is reported, not raised, so the rest of the page counts; the caller's own earlier vote on a face
    (a page sent twice) is ``already_voted`` and counts once. Results come back in the order of ``marks``."""
    _check_marks(label, marks)
    unmarked = [m.item_id for m in marks if m.choice is None]
    # Only faces the caller holds the lease of (those the vote service would take a vote on) are checked here; any
    # other id goes on to the vote service and gets its answer ("not found", "already voted"), so a face's label
    # cannot be probed through this check and a page sent twice still counts once.
    labels = dict(ReviewItem.objects.filter(pk__in=unmarked, lease_holder=user)
                  .values_list("pk", "face__current_label"))
    results: dict[int, GridVoteResult] = {}
    for mark in sorted(marks, key=lambda m: m.item_id):
        choice = label if mark.choice is None else mark.choice
        if mark.choice is None and mark.item_id in labels and labels[mark.item_id] != label:
            results[mark.item_id] = GridVoteResult(mark.item_id, choice, "label_changed")
            continue
        try:
            vote = review_vote_cast(user=user, item_id=mark.item_id, choice=choice)  # its own savepoint
        except ReviewError as error:
            results[mark.item_id] = GridVoteResult(mark.item_id, choice, error.code)
            continue
        results[mark.item_id] = GridVoteResult(mark.item_id, choice, "recorded", vote.item.status,
                                               vote.item.settled_label)
    return [results[m.item_id] for m in marks]
