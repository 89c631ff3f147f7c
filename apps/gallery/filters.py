"""The gallery's filters, shared by the page, the API and the ZIP export (one definition, so they always agree)."""

from __future__ import annotations

import django_filters
from django import forms
from django.db.models import F, Q, QuerySet

from apps.faces.labels import Emotion
from apps.faces.models import Split
from apps.inference.models import Prediction

SORTS: dict[str, tuple[str, list]] = {
    "face": ("face id", [F("face_id").asc()]),
    "-confidence": ("confidence, highest first", [F("confidence").desc(), F("face_id").asc()]),
    "confidence": ("confidence, lowest first", [F("confidence").asc(), F("face_id").asc()]),
    "quality": ("label quality, worst first", [F("label_quality").asc(nulls_last=True), F("face_id").asc()]),
    "-quality": ("label quality, best first", [F("label_quality").desc(nulls_last=True), F("face_id").asc()]),
}


MAX_FACE_IDS = 1000  # a selection made on the data map; a longer list would not fit a URL anyway


class FaceIdsFilter(django_filters.BaseInFilter, django_filters.NumberFilter):
    """``?faces=1,2,3``: only these faces."""


class GalleryFilterForm(forms.Form):
    def clean_faces(self):
        faces = self.cleaned_data.get("faces")
        if faces and len(faces) > MAX_FACE_IDS:
            raise forms.ValidationError(f"at most {MAX_FACE_IDS} face ids, got {len(faces)}")
        return faces


class GalleryFilter(django_filters.FilterSet):
    """Filters over ``selectors.gallery_predictions`` (predictions of one version, annotated)."""

    split = django_filters.ChoiceFilter(field_name="face__split", label="split",
                                        choices=[(v, label) for v, label in Split.choices if v != Split.UPLOAD])
    true_label = django_filters.ChoiceFilter(field_name="face__current_label", choices=Emotion.choices,
                                             label="true (current) label")
    predicted_label = django_filters.ChoiceFilter(field_name="predicted_label", choices=Emotion.choices,
                                                  label="predicted label")
    correct = django_filters.BooleanFilter(method="filter_correct", label="prediction is correct")
    confidence_min = django_filters.NumberFilter(field_name="confidence", lookup_expr="gte",
                                                 label="confidence at least")
    confidence_max = django_filters.NumberFilter(field_name="confidence", lookup_expr="lte",
                                                 label="confidence at most")
    reviewed = django_filters.BooleanFilter(method="filter_reviewed",
                                            label="reviewed (a settled review item or a label change)")
    faces = FaceIdsFilter(field_name="face_id", lookup_expr="in", label="face ids (comma-separated)")
    sort = django_filters.ChoiceFilter(method="filter_sort", choices=[(k, v[0]) for k, v in SORTS.items()],
                                       label="sort by")

    class Meta:
        model = Prediction
        fields: list[str] = []
        form = GalleryFilterForm

    def filter_correct(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        if value is None:
            return queryset
        matches = Q(predicted_label=F("face__current_label"))
        return queryset.filter(matches) if value else queryset.filter(face__current_label__isnull=False).exclude(
            matches)

    def filter_reviewed(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        return queryset if value is None else queryset.filter(is_reviewed=value)

    def filter_sort(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.order_by(*SORTS[value][1]) if value in SORTS else queryset
