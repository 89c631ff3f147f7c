"""Reads for faces."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count

from .labels import CLASSES
from .models import FaceImage, Split


@dataclass(frozen=True)
class FaceCounts:
    """Images per split (rows) and current label (columns; the last column is "unlabelled")."""

    columns: list[str]
    rows: list[tuple[str, list[int], int]]  # (split, counts per column, row total)
    column_totals: list[int]
    total: int
    excluded: int


def face_counts_by_split_and_label() -> FaceCounts:
    grouped = FaceImage.objects.values_list("split", "current_label").annotate(n=Count("id")).order_by()
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
        excluded=FaceImage.objects.filter(excluded=True).count(),
    )
