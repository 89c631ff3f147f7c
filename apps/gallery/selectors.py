"""Reads for the researchers' galleries: faces with their stored predictions and overlays, one face's detail,
version comparison, evaluation figures computed from stored predictions, and class-average Grad-CAM maps.

Nothing here runs a model or encodes an image per request: overlays are the PNGs stored by apps.inference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from django.apps import apps as django_apps
from django.core.exceptions import FieldError
from django.db.models import (
    BooleanField,
    Case,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)

from apps.core.errors import NotFound
from apps.faces.models import FaceImage, Split
from apps.faces.selectors import face_splits_visible_to, training_faces_labelled
from apps.inference.models import MAP_SIZE, Explanation, ModelVersion, Prediction
from apps.review.ferplus import ferplus_majority_accuracy
from apps.review.models import LabelHistory, LabelScore, ReviewItem, Vote
from apps.review.selectors import blind_review_for
from ml.cam_stats import MapAverager
from ml.evaluate import classification_metrics
from ml.labels import CLASSES, NUM_CLASSES

from .models import FaithfulnessFaceScore, FaithfulnessScore

# The seeds' own figures on FER-2013 test, as published with them (not measured on this platform).
PUBLISHED_FIGURES: tuple[dict, ...] = (
    {"name": "Keras CNN (seed)", "accuracy": 0.7013, "source": "published with the seed; FER-2013 test"},
    {"name": "VGG19 transfer (seed)", "accuracy": 0.5911, "source": "published with the seed; FER-2013 test"},
)


def _overlay_of(*, version: ModelVersion | int, method: str, target: str, layer: str = "last") -> Subquery:
    return Subquery(Explanation.objects.filter(face=OuterRef("face"), model_version=version, method=method,
                                               layer=layer, target_label=OuterRef(target)).values("overlay")[:1])


def _face_faithfulness(*, version: ModelVersion, method: str, layer: str, field: str) -> Subquery:
    """One face's ROAD figure (``road``) or its random baseline's (``baseline``) for the map of its predicted class."""
    return Subquery(FaithfulnessFaceScore.objects.filter(
        face=OuterRef("face"), target_label=OuterRef("predicted_label"), score__model_version=version,
        score__method=method, score__layer=layer, score__metric=FaithfulnessScore.Metric.ROAD,
    ).order_by("-score__created_at").values(field)[:1])


def gallery_predictions(*, version: ModelVersion, method: str, splits: Sequence[str],
                        layer: str = "last") -> QuerySet[Prediction]:
    """Every prediction of ``version`` for faces in ``splits`` with its face, the stored overlay of ``method`` on
    ``layer`` for the predicted class (``overlay_name``, None when not computed), its measured ROAD and the random
    map's on the same face (``road``, ``road_baseline``; None when not measured), whether it is correct and reviewed,
    and the latest label quality."""
    latest_quality = (LabelScore.objects.filter(face=OuterRef("face"))
                      .order_by("-run__created_at", "-run_id").values("quality")[:1])
    reviewed = (Q(Exists(ReviewItem.objects.filter(face=OuterRef("face"), status=ReviewItem.Status.SETTLED)))
                | Q(Exists(LabelHistory.objects.filter(face=OuterRef("face")))))
    return (Prediction.objects.filter(model_version=version, face__split__in=list(splits))
            .select_related("face", "face__pixels")
            .annotate(overlay_name=_overlay_of(version=version, method=method, target="predicted_label", layer=layer),
                      road=_face_faithfulness(version=version, method=method, layer=layer, field="road"),
                      road_baseline=_face_faithfulness(version=version, method=method, layer=layer, field="baseline"),
                      label_quality=Subquery(latest_quality),
                      is_reviewed=ExpressionWrapper(reviewed, output_field=BooleanField()),
                      is_correct=Case(When(predicted_label=F("face__current_label"), then=Value(True)),
                                      default=Value(False), output_field=BooleanField()))
            .order_by("face_id"))


# --- one face ------------------------------------------------------------------------------------------------------

@dataclass
class FaceDetail:
    face: FaceImage
    version: ModelVersion | None
    prediction: Prediction | None
    explanations: list[Explanation]
    history: list[LabelHistory]
    votes: list[Vote]
    review_item: ReviewItem | None
    label_score: LabelScore | None
    probabilities: list[tuple[str, float]] = field(default_factory=list)


def gallery_face_detail(*, face: FaceImage, version: ModelVersion | None, user) -> FaceDetail:
    """A face with the prediction and every stored heatmap of ``version``, its label history and review votes, as
    ``user`` may see them: votes and the votes inside history entries follow the blind-review rule
    (``apps.review.selectors.blind_review_for``): admins and the round's voters whose counted vote is final see who
    chose what; other researchers see the outcome only."""
    prediction = (Prediction.objects.filter(face=face, model_version=version).first() if version else None)
    explanations = Explanation.objects.filter(face=face, model_version=version).order_by("method", "target_label")
    item = ReviewItem.objects.filter(face=face).first()
    # The one blind-review rule, for researchers too: admins and the round's final voters see who chose what;
    # everyone else sees the settled outcome (the labels) only.
    blind = blind_review_for(user=user, item_ids=[item.pk] if item else [])
    history = []
    for entry in LabelHistory.objects.filter(face=face).select_related("actor").order_by("created_at", "id"):
        shown = blind.entry(entry, item)
        if shown is None:
            continue
        if shown.votes is None:  # a round the viewer has no vote in: labels only, no voters or choices
            entry.votes = None
            if entry.kind == LabelHistory.Kind.UNDO:
                entry.actor = None
        history.append(entry)
    votes = [v for v in Vote.objects.filter(item__face=face).select_related("reviewer", "item")
             .order_by("created_at", "id") if blind.sees_round(v.item_id, v.round)
             and (blind.is_admin or not v.item.is_gold or v.reviewer_id == blind.user_id)]
    return FaceDetail(
        face=face, version=version, prediction=prediction, explanations=list(explanations) if version else [],
        history=history, votes=votes, review_item=item,
        label_score=LabelScore.objects.filter(face=face).order_by("-run__created_at", "-run_id").first(),
        probabilities=list(zip(CLASSES, prediction.probabilities, strict=True)) if prediction else [],
    )


# --- comparing two versions ----------------------------------------------------------------------------------------

def compare_predictions(*, a: ModelVersion, b: ModelVersion, method: str, splits: Sequence[str], split: str = "",
                        changed_only: bool = False) -> QuerySet[Prediction]:
    """Predictions of ``a`` for the faces ``b`` predicted too, with b's label and confidence (``b_label``,
    ``b_confidence``) and both overlays of ``method`` for each version's predicted class."""
    rows = (_compare_base(a=a, b=b, splits=splits, split=split).select_related("face", "face__pixels")
            .annotate(a_overlay=_overlay_of(version=a, method=method, target="predicted_label"),
                      b_overlay=_overlay_of(version=b, method=method, target="b_label"))
            .order_by("face_id"))
    if changed_only:
        rows = rows.exclude(predicted_label=F("b_label"))
    return rows


def _compare_base(*, a: ModelVersion, b: ModelVersion, splits: Sequence[str], split: str) -> QuerySet[Prediction]:
    theirs = Prediction.objects.filter(face=OuterRef("face"), model_version=b)
    rows = (Prediction.objects.filter(model_version=a, face__split__in=list(splits))
            .annotate(b_label=Subquery(theirs.values("predicted_label")[:1]),
                      b_confidence=Subquery(theirs.values("confidence")[:1]))
            .filter(b_label__isnull=False))
    return rows.filter(face__split=split) if split else rows


def compare_summary(*, a: ModelVersion, b: ModelVersion, splits: Sequence[str], split: str = "") -> dict:
    """How many faces both versions predicted, how many predictions changed, and each version's accuracy on them."""
    rows = _compare_base(a=a, b=b, splits=splits, split=split)
    labelled = Q(face__current_label__isnull=False)
    return rows.aggregate(
        both=Count("pk"),
        changed=Count("pk", filter=~Q(predicted_label=F("b_label"))),
        labelled=Count("pk", filter=labelled),
        a_correct=Count("pk", filter=labelled & Q(predicted_label=F("face__current_label"))),
        b_correct=Count("pk", filter=labelled & Q(b_label=F("face__current_label"))),
    )


# --- evaluation ----------------------------------------------------------------------------------------------------

def gallery_splits(*, user) -> list[str]:
    """Splits whose faces the galleries show ``user``: the face access rule's splits
    (``apps.faces.selectors.face_splits_visible_to``). Uploads never: they belong to the users who sent them."""
    return face_splits_visible_to(user)


def gallery_face_get(*, user, face_id: int) -> FaceImage:
    """Face ``face_id`` with its pixels and dataset, if it is in a split the galleries show ``user``; ``NotFound``
    otherwise (an upload, a hidden split or no such face: the same answer)."""
    face = (FaceImage.objects.select_related("pixels", "dataset")
            .filter(pk=face_id, split__in=gallery_splits(user=user)).first())
    if face is None:
        raise NotFound(f"no face {face_id}")
    return face


def evaluation_splits(*, user) -> list[str]:
    """Splits a version is evaluated on for ``user``: PublicTest, and PrivateTest where the access rule allows it."""
    return [s for s in face_splits_visible_to(user) if s != Split.TRAINING]


def model_evaluation(*, version: ModelVersion, split: str = Split.PUBLIC_TEST) -> dict:
    """Accuracy, macro-F1, per-class figures and confusion matrices of ``version`` on ``split``, from the stored
    predictions against the current labels. ``metrics`` is None when no face of the split is predicted."""
    faces = FaceImage.objects.filter(split=split, excluded=False, current_label__isnull=False)
    rows = list(Prediction.objects.filter(model_version=version, face__in=faces)
                .values_list("face__current_label", "probabilities"))
    result = {"split": split, "faces": faces.count(), "predicted": len(rows), "metrics": None}
    if rows:
        labels = np.array([label for label, _ in rows], dtype=np.int64)
        probs = np.array([p for _, p in rows], dtype=np.float64)
        result["metrics"] = classification_metrics(labels, probs)
    return result


def training_class_distribution(*, version: ModelVersion) -> dict:
    """Class counts of the training data with scikit-learn's "balanced" weights (n / (classes present * count)).

    The version's snapshot is used when it records class counts; otherwise the current Training labels."""
    snapshot = version.data_snapshot.get("class_counts") if isinstance(version.data_snapshot, dict) else None
    if isinstance(snapshot, dict):
        snapshot = [snapshot.get(name, 0) for name in CLASSES]
    if isinstance(snapshot, list) and len(snapshot) == NUM_CLASSES:
        counts, source = [int(n) for n in snapshot], "the version's training snapshot"
    else:
        by_label = dict(training_faces_labelled()
                        .values_list("current_label").annotate(n=Count("pk")).values_list("current_label", "n"))
        counts, source = [by_label.get(i, 0) for i in range(NUM_CLASSES)], "current Training labels"
    total, present = sum(counts), sum(1 for n in counts if n)
    weights = [total / (present * n) if n else 0.0 for n in counts]
    recipe = version.config.get("recipe", {}) if isinstance(version.config, dict) else {}
    return {"source": source, "total": total, "used": recipe.get("class_weights"),
            "rows": [{"label": i, "name": CLASSES[i], "count": n, "share": n / total if total else 0.0, "weight": w}
                     for i, (n, w) in enumerate(zip(counts, weights, strict=True))]}


def _history_ok(history: object) -> bool:
    return isinstance(history, list) and bool(history) and all(isinstance(h, dict) and "epoch" in h for h in history)


def training_history(*, version: ModelVersion) -> list[dict]:
    """Per-epoch figures: from the training run that produced the version (apps.training keeps them in its
    ``progress``), else ``metrics.history`` or ``config.history`` when the version recorded them; [] otherwise."""
    try:  # apps.training is optional for the gallery: read it only if it is installed and has the field
        runs = django_apps.get_model("training", "TrainingRun").objects.filter(model_version=version)
        progress = runs.order_by("-pk").values_list("progress", flat=True).first()
    except (LookupError, FieldError):
        progress = None
    if _history_ok(progress):
        return progress
    for source in (version.metrics, version.config):
        history = source.get("history") if isinstance(source, dict) else None
        if _history_ok(history):
            return history
    return []


def final_metrics(*, version: ModelVersion) -> dict[str, float]:
    """The scalar figures a version recorded (what a page shows when there is no per-epoch history)."""
    metrics = version.metrics if isinstance(version.metrics, dict) else {}
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def faithfulness_for(*, version: ModelVersion, splits: Sequence[str]) -> list[FaithfulnessScore]:
    return list(FaithfulnessScore.objects.filter(model_version=version, split__in=list(splits))
                .order_by("split", "-mean"))


def face_faithfulness(*, face: FaceImage, version: ModelVersion | None) -> dict[tuple[str, str, int], tuple]:
    """The measured ROAD figures of ``face``'s maps by ``version``: (method, layer, target) -> (road, random map's)."""
    if version is None:
        return {}
    rows = (FaithfulnessFaceScore.objects.filter(face=face, score__model_version=version,
                                                 score__metric=FaithfulnessScore.Metric.ROAD)
            .order_by("score__created_at").values_list("score__method", "score__layer", "target_label", "road",
                                                       "baseline"))
    return {(m, layer, t): (road, baseline) for m, layer, t, road, baseline in rows}


def faithfulness_per_class(*, version: ModelVersion, method: str, layer: str, splits: Sequence[str]) -> list[dict]:
    """Per predicted class, over every measured split the viewer may see: how many maps of ``method`` on ``layer``
    were measured and the share that beat the random map on the same face (None for a class without any)."""
    rows = (FaithfulnessFaceScore.objects
            .filter(score__model_version=version, score__method=method, score__layer=layer,
                    score__metric=FaithfulnessScore.Metric.ROAD, score__split__in=list(splits))
            .values("target_label")
            .annotate(n=Count("pk"), beats=Count("pk", filter=Q(road__gt=F("baseline")))))
    counts = {r["target_label"]: (r["beats"], r["n"]) for r in rows}
    return [{"label": i, "name": name, "faces": counts.get(i, (0, 0))[1], "beats": counts.get(i, (0, 0))[0],
             "share": counts[i][0] / counts[i][1] if counts.get(i, (0, 0))[1] else None}
            for i, name in enumerate(CLASSES)]


@dataclass
class EvaluationReport:
    """Everything the evaluation page and ``GET /api/gallery/models/{id}/evaluation`` show of one version."""

    version: ModelVersion
    evaluations: list[dict]  # PublicTest always; PrivateTest when visible and the data holds it
    class_distribution: dict
    history: list[dict]
    final_metrics: dict[str, float]
    faithfulness: list[FaithfulnessScore]
    published: tuple[dict, ...] = PUBLISHED_FIGURES
    ferplus: dict | None = None  # PublicTest accuracy against the FER+ majority; None: no FER+ votes imported


def model_evaluation_report(*, version: ModelVersion, user) -> EvaluationReport:
    splits = evaluation_splits(user=user)
    evaluations = [model_evaluation(version=version, split=split) for split in splits]
    return EvaluationReport(
        version=version,
        evaluations=[e for e in evaluations if e["split"] == Split.PUBLIC_TEST or e["faces"]],
        class_distribution=training_class_distribution(version=version),
        history=training_history(version=version),
        final_metrics=final_metrics(version=version),
        faithfulness=faithfulness_for(version=version, splits=splits),
        ferplus=ferplus_majority_accuracy(version=version, split=Split.PUBLIC_TEST),
    )


# --- class-average maps --------------------------------------------------------------------------------------------

def class_maps(*, version: ModelVersion, method: str, by: str, split: str = Split.PUBLIC_TEST) -> MapAverager:
    """Mean stored maps of ``method`` on ``split``. ``by="true"``: the maps explaining the current label, keyed by
    it; ``by="predicted"``: the maps explaining the predicted class, keyed by it and by ``(true, predicted)`` cell."""
    if by not in ("true", "predicted"):
        raise ValueError(f"by must be 'true' or 'predicted', not {by!r}")
    predicted = Subquery(Prediction.objects.filter(face=OuterRef("face"), model_version=version)
                         .values("predicted_label")[:1])
    rows = (Explanation.objects.filter(model_version=version, method=method, face__split=split,
                                       face__excluded=False, face__current_label__isnull=False)
            .annotate(predicted=predicted).filter(predicted__isnull=False)
            .filter(target_label=F("face__current_label") if by == "true" else F("predicted")))
    averager = MapAverager((MAP_SIZE, MAP_SIZE))
    for raw, true, pred in rows.values_list("raw_map", "face__current_label", "predicted").iterator(chunk_size=2000):
        if by == "true":
            averager.add(true, raw)
        else:
            averager.add(pred, raw)
            averager.add((true, pred), raw)
    return averager


def class_maps_report(*, version: ModelVersion, method: str, by: str, split: str = Split.PUBLIC_TEST) -> dict:
    """``class_maps`` as the API answers it: per class name, and for ``by="predicted"`` per (true, predicted) cell,
    the count and the mean map (48x48 nested lists rounded to 4 places; None without maps)."""
    maps = class_maps(version=version, method=method, by=by, split=split)

    def entry(key) -> dict:
        mean = maps.mean(key)
        return {"count": maps.count(key), "mean": None if mean is None else np.round(mean, 4).tolist()}

    classes = {name: entry(label) for label, name in enumerate(CLASSES)}
    cells = [{"true": CLASSES[t], "predicted": CLASSES[p], **entry((t, p))}
             for t, p in sorted(k for k in maps.keys() if isinstance(k, tuple))]
    return {"model_version": version.pk, "method": method, "by": by, "split": split, "classes": classes,
            "cells": cells}
