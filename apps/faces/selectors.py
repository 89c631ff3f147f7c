"""Reads for faces: the one definition of "labelled Training faces", the one PNG decoder, and the counts page."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from PIL import Image

from apps.accounts.roles import Role, user_has_role
from apps.core.errors import NotFound
from ml.labels import CLASSES

from .models import FACE_SIZE, FaceImage, FacePixels, NearDuplicateMember, NearDuplicateRun, Split


def training_faces_labelled() -> QuerySet[FaceImage]:
    """Every Training face with a current label that reviewers did not mark "not a face": what label scoring trains
    on, what a training run snapshots, and what the class distribution counts."""
    return FaceImage.objects.filter(split=Split.TRAINING, excluded=False, current_label__isnull=False)


def face_splits_visible_to(user) -> list[str]:
    """Dataset splits whose faces ``user`` may see by role: Training and PublicTest for researchers and admins,
    PrivateTest only for admins and only when ``GALLERY_SHOW_PRIVATE_TEST`` is on. Uploads are never a role's: they
    belong to their owner (``faces_visible_to``)."""
    splits: list[str] = []
    if user_has_role(user, Role.RESEARCHER):
        splits += [Split.TRAINING.value, Split.PUBLIC_TEST.value]
    if user_has_role(user, Role.ADMIN) and settings.GALLERY_SHOW_PRIVATE_TEST:
        splits.append(Split.PRIVATE_TEST.value)
    return splits


def faces_visible_to(user) -> QuerySet[FaceImage]:
    """The one access rule for faces, used by every endpoint, page, export and media response:

    - uploads: their owner and admins;
    - PrivateTest: admins, and only when ``GALLERY_SHOW_PRIVATE_TEST`` is on;
    - Training and PublicTest: researchers and admins;
    - reviewers: a face only through a review item leased to them now or one they voted on.
    """
    if user is None or not user.is_authenticated:
        return FaceImage.objects.none()
    # An upload's largest face is its ``face``; every face it holds is an ``UploadFace``.
    rule = Q(split=Split.UPLOAD) & (Q(uploads__user=user) | Q(upload_faces__upload__user=user))
    if user_has_role(user, Role.ADMIN):
        rule |= Q(split=Split.UPLOAD)
    splits = face_splits_visible_to(user)
    if splits:
        rule |= Q(split__in=splits)
    if user_has_role(user, Role.REVIEWER):
        rule |= (Q(review_item__lease_holder=user, review_item__lease_expires_at__gt=timezone.now())
                 | Q(review_item__votes__reviewer=user))
    return FaceImage.objects.filter(pk__in=FaceImage.objects.filter(rule).values("pk"))


def face_get_for(*, user, face_id: int) -> FaceImage:
    """Face ``face_id`` if ``user`` may see it (``faces_visible_to``); ``NotFound`` otherwise, the same answer as for
    a face that does not exist."""
    face = faces_visible_to(user).filter(pk=face_id).first()
    if face is None:
        raise NotFound(f"no face {face_id}")
    return face


def face_pixels(face_ids: Sequence[int]) -> np.ndarray:
    """uint8 (N, 48, 48) pixels of ``face_ids`` in that order, read from their stored PNGs; exact duplicates (one
    shared PNG) are decoded once. ``ValueError`` for an id that does not exist or a stored image of another size."""
    ids = [int(pk) for pk in face_ids]
    names = dict(FaceImage.objects.filter(pk__in=ids).values_list("pk", "pixels__png"))
    missing = [pk for pk in ids if pk not in names]
    if missing:
        raise ValueError(f"{len(missing)} face(s) do not exist (e.g. id {missing[0]})")
    storage = FacePixels._meta.get_field("png").storage
    images = np.empty((len(ids), FACE_SIZE, FACE_SIZE), dtype=np.uint8)
    decoded: dict[str, np.ndarray] = {}
    for i, pk in enumerate(ids):
        name = names[pk]
        if name not in decoded:
            with storage.open(name, "rb") as fh, Image.open(fh) as image:
                array = np.asarray(image.convert("L"), dtype=np.uint8)
            if array.shape != (FACE_SIZE, FACE_SIZE):
                raise ValueError(f"face {pk}: stored image is {array.shape}, expected {FACE_SIZE}x{FACE_SIZE}")
            decoded[name] = array
        images[i] = decoded[name]
    return images


@dataclass(frozen=True)
class FaceCounts:
    """Images per split (rows) and current label (columns; the last column is "unlabelled")."""

    columns: list[str]
    rows: list[tuple[str, list[int], int]]  # (split, counts per column, row total)
    column_totals: list[int]
    total: int
    excluded: int


def face_counts_by_split_and_label(*, faces: QuerySet[FaceImage]) -> FaceCounts:
    """Counts of ``faces``: pass ``faces_visible_to(user)`` wherever a user is shown them."""
    grouped = faces.values_list("split", "current_label").annotate(n=Count("id")).order_by()
    table: dict[str, list[int]] = {split: [0] * (len(CLASSES) + 1) for split in Split.values}
    for split, label, n in grouped:
        column = len(CLASSES) if label is None else label
        table.setdefault(split, [0] * (len(CLASSES) + 1))[column] += n
    rows = [(split, counts, sum(counts)) for split, counts in table.items() if sum(counts)]
    column_totals = [sum(counts[i] for _, counts, _ in rows) for i in range(len(CLASSES) + 1)]
    return FaceCounts(
        columns=[*CLASSES, "unlabelled"],
        rows=rows,
        column_totals=column_totals,
        total=sum(column_totals),
        excluded=faces.filter(excluded=True).count(),
    )


# --- near-duplicates (written by apps/faces/near_duplicates.py) ----------------------------------------------------

def near_duplicate_run_latest() -> NearDuplicateRun | None:
    """The latest search that succeeded: what the page shows and what training leaves out."""
    return NearDuplicateRun.objects.filter(status=NearDuplicateRun.Status.SUCCEEDED).order_by("-finished_at",
                                                                                              "-pk").first()


def near_duplicate_run_pending() -> NearDuplicateRun | None:
    """A search that is queued or running now, if any."""
    return NearDuplicateRun.objects.filter(
        status__in=[NearDuplicateRun.Status.QUEUED, NearDuplicateRun.Status.RUNNING]).order_by("-pk").first()


@dataclass(frozen=True)
class NearDuplicateMemberView:
    face_id: int
    split: str
    label: int | None  # when the run searched
    current_label: int | None
    png_url: str


@dataclass(frozen=True)
class NearDuplicateGroupView:
    id: int
    splits: list[str]
    cross_split: bool
    conflicting: bool
    pairs: list[list]
    members: list[NearDuplicateMemberView]
    hidden: int  # members this user may not see


def near_duplicate_groups_for(*, user, run: NearDuplicateRun, cross_split: bool = False, conflicting: bool = False,
                              offset: int = 0, limit: int = 100) -> tuple[int, list[NearDuplicateGroupView]]:
    """(total, page) of ``run``'s groups that show ``user`` two or more faces they may see, conflicting and
    cross-split ones first; members ``faces_visible_to(user)`` does not allow are counted, not shown."""
    groups = run.groups.all()
    if cross_split:
        groups = groups.filter(cross_split=True)
    if conflicting:
        groups = groups.filter(conflicting=True)
    visible = faces_visible_to(user)
    groups = (groups.annotate(seen=Count("members", filter=Q(members__face__in=visible))).filter(seen__gte=2)
              .order_by("-conflicting", "-cross_split", "-size", "pk"))
    total = groups.count()
    page = list(groups[offset:offset + limit])
    allowed = set(visible.filter(near_duplicate_memberships__group__in=page).values_list("pk", flat=True))
    members = (NearDuplicateMember.objects.filter(group__in=page).select_related("face__pixels")
               .order_by("group_id", "split", "face_id"))
    by_group: dict[int, list[NearDuplicateMember]] = {}
    for member in members:
        by_group.setdefault(member.group_id, []).append(member)
    views = []
    for group in page:
        shown = [m for m in by_group.get(group.pk, []) if m.face_id in allowed]
        views.append(NearDuplicateGroupView(
            id=group.pk, splits=group.splits, cross_split=group.cross_split, conflicting=group.conflicting,
            pairs=[p for p in group.pairs if p[0] in allowed and p[1] in allowed],
            members=[NearDuplicateMemberView(face_id=m.face_id, split=m.split, label=m.label,
                                             current_label=m.face.current_label, png_url=m.face.pixels.png.url)
                     for m in shown],
            hidden=group.size - len(shown)))
    return total, views


def training_faces_with_test_near_duplicates(run: NearDuplicateRun | None = None) -> set[int]:
    """Training faces in a group of the latest succeeded search (or ``run``) with a PublicTest or PrivateTest face:
    what a run that leaves out cross-split duplicates does not train on."""
    run = run or near_duplicate_run_latest()
    if run is None:
        return set()
    tested = NearDuplicateMember.objects.filter(group__run=run, split__in=[Split.PUBLIC_TEST, Split.PRIVATE_TEST])
    return set(NearDuplicateMember.objects.filter(group__run=run, group__in=tested.values("group"),
                                                  split=Split.TRAINING).values_list("face_id", flat=True))


def near_duplicates_overview(*, user, cross_split: bool = False, conflicting: bool = False, offset: int = 0,
                             limit: int = 50) -> dict:
    """What the page and the API show: the latest succeeded search, a pending one, and a page of its groups."""
    run, pending = near_duplicate_run_latest(), near_duplicate_run_pending()
    total, groups = (near_duplicate_groups_for(user=user, run=run, cross_split=cross_split, conflicting=conflicting,
                                               offset=offset, limit=limit) if run is not None else (0, []))
    state = "ready" if run is not None else ("pending" if pending is not None else "none")
    return {"state": state, "run": run, "pending": pending, "total": total, "groups": groups}
