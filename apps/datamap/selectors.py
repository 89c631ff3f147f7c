"""Reads for data maps: maps a user may see (those of splits whose faces they may see), and a map's points as compact
arrays with the live label quality (the latest successful scoring run) and review state of each face."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import F, QuerySet

from apps.core.errors import NotFound
from apps.core.models import WorkStatus
from apps.faces.models import FacePixels
from apps.faces.selectors import face_splits_visible_to
from apps.inference.models import ModelVersion
from apps.review.models import LabelScore, ReviewItem, ScoringRun

from .models import DataMap, DataMapPoint


def data_maps_visible_to(*, user) -> QuerySet[DataMap]:
    return DataMap.objects.select_related("model_version").filter(split__in=face_splits_visible_to(user))


def data_map_get_for(*, user, map_id: int) -> DataMap:
    """Map ``map_id`` if ``user`` may see its split's faces; ``NotFound`` otherwise (the same answer as no map)."""
    data_map = data_maps_visible_to(user=user).filter(pk=map_id).first()
    if data_map is None:
        raise NotFound(f"no data map {map_id}")
    return data_map


@dataclass(frozen=True)
class MapState:
    """What the page shows for one (version, split, method): the newest map that succeeded and a newer one still
    being made (either may be None)."""

    ready: DataMap | None
    working: DataMap | None


def data_map_state(*, user, version: ModelVersion, split: str, method: str) -> MapState:
    maps = data_maps_visible_to(user=user).filter(model_version=version, split=split, method=method)
    return MapState(ready=maps.filter(status=WorkStatus.SUCCEEDED).first(),
                    working=maps.filter(status__in=[WorkStatus.QUEUED, WorkStatus.RUNNING]).first())


def scoring_run_latest() -> ScoringRun | None:
    """The scoring run whose label qualities are current: the latest that succeeded (as the review queue counts)."""
    return (ScoringRun.objects.filter(status=WorkStatus.SUCCEEDED)
            .order_by(F("finished_at").desc(nulls_last=True), "-pk").first())


def data_map_points(*, data_map: DataMap) -> dict[str, list]:
    """Parallel arrays, one entry per face ordered by face id: ``ids``, ``x``, ``y`` (0-1, y up), ``label`` (when
    the map was made; null: unlabelled), ``predicted``, ``confidence``, ``quality`` (latest scoring run; null: not
    scored), ``review`` (the face's review item status; null: none) and ``image`` (the face PNG's checked URL)."""
    rows = list(DataMapPoint.objects.filter(data_map=data_map).order_by("face_id").values_list(
        "face_id", "x", "y", "label", "predicted_label", "confidence", "face__pixels__png"))
    ids = [row[0] for row in rows]
    run = scoring_run_latest()
    quality = dict(LabelScore.objects.filter(run=run, face__split=data_map.split).values_list("face_id", "quality")
                   ) if run is not None else {}
    review = dict(ReviewItem.objects.filter(face__split=data_map.split).values_list("face_id", "status"))
    storage = FacePixels._meta.get_field("png").storage
    return {
        "ids": ids,
        "x": [round(row[1], 5) for row in rows],
        "y": [round(row[2], 5) for row in rows],
        "label": [row[3] for row in rows],
        "predicted": [row[4] for row in rows],
        "confidence": [round(row[5], 4) for row in rows],
        "quality": [None if quality.get(pk) is None else round(quality[pk], 4) for pk in ids],
        "review": [review.get(pk) for pk in ids],
        "image": [storage.url(row[6]) for row in rows],
    }
