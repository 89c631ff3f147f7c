"""Server-rendered pages for researchers and admins: the Grad-CAM gallery, a face's detail, a version's evaluation,
the comparison of two versions, and the PNG/ZIP downloads. Reviewers get 403 (their judgement stays unprimed)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.core.paginator import Paginator
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.urls import reverse
from django.views import View
from django.views.generic import TemplateView

from apps.accounts.roles import Role, RoleRequiredMixin
from apps.core.errors import NotFound
from apps.core.throttles import ThrottledPageMixin
from apps.inference.models import ModelVersion
from apps.inference.selectors import model_version_get, model_version_list
from apps.inference.services.predictions import CAM_LAYERS, CAM_METHODS, FINE_LAYER_METHODS
from ml.labels import CLASSES

from . import exports
from .filters import GalleryFilter
from .params import class_map_params, compare_params, gallery_params, media_url, method_param, query_without
from .selectors import (
    class_maps,
    compare_predictions,
    compare_summary,
    evaluation_splits,
    face_faithfulness,
    faithfulness_per_class,
    gallery_face_detail,
    gallery_face_get,
    gallery_predictions,
    gallery_splits,
    model_evaluation,
    model_evaluation_report,
    training_history,
)

EXPORT_LIMIT = 5000  # faces per ZIP: a page of the gallery is 100; this keeps a download under ~100 MB


class ResearcherView(RoleRequiredMixin):
    required_roles = (Role.RESEARCHER,)


def _visible_splits(request: HttpRequest) -> list[str]:
    return gallery_splits(user=request.user)


def gallery_card(row, *, detail_query: str) -> dict:
    """What a gallery tile shows, from an annotated prediction (``selectors.gallery_predictions``). Strings are made
    here rather than by template filters and tags: a page has 100 tiles, and the filters cost more than the rest."""
    face = row.face
    return {"face": face, "prediction": row, "face_url": face.pixels.png.url,
            "overlay_url": media_url(row.overlay_name),
            "href": reverse("gallery-face", args=[face.pk]) + detail_query,
            "confidence": f"{row.confidence:.2f}",
            "road": None if row.road is None else f"{row.road:+.3f}",
            "road_baseline": None if row.road_baseline is None else f"{row.road_baseline:+.3f}",
            "beats_baseline": row.road is not None and row.road > row.road_baseline,
            "true_class": CLASSES[face.current_label] if face.current_label is not None else "",
            "predicted_class": CLASSES[row.predicted_label]}


# What a tile never shows: decoded per row for nothing (probabilities and FER+ votes are JSON).
GALLERY_TILE_DEFERRED = ("probabilities", "created_at", "face__ferplus_votes", "face__source_name",
                         "face__created_at", "face__updated_at", "face__pixels__created_at")


class GalleryView(ResearcherView, TemplateView):
    template_name = "gallery/gallery.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        params = gallery_params(self.request.GET)
        context.update(params=params, versions=model_version_list(), methods=CAM_METHODS, layers=CAM_LAYERS,
                       fine_methods=FINE_LAYER_METHODS, query=query_without(self.request.GET, "page"))
        if params.version is None:
            return context
        context["per_class"] = faithfulness_per_class(version=params.version, method=params.method,
                                                      layer=params.layer, splits=_visible_splits(self.request))
        context["measured"] = any(row["faces"] for row in context["per_class"])
        rows = gallery_predictions(version=params.version, method=params.method, layer=params.layer,
                                   splits=_visible_splits(self.request))
        filterset = GalleryFilter(self.request.GET, queryset=rows)
        context["filterset"] = filterset
        if filterset.is_valid():
            # Page over ids, then annotate only the page's rows: with OFFSET, PostgreSQL computes the annotations
            # (overlay, label quality, reviewed) of every row it skips.
            ids = filterset.qs.values_list("pk", flat=True)
            page = Paginator(ids, settings.GALLERY_PAGE_SIZE).get_page(self.request.GET.get("page"))
            page_rows = filterset.qs.filter(pk__in=list(page.object_list)).defer(*GALLERY_TILE_DEFERRED)
            detail_query = "?" + urlencode({"version": params.version.pk, "method": params.method,
                                            "layer": params.layer})
            context["page_obj"], context["show_results"] = page, True
            context["cards"] = [gallery_card(row, detail_query=detail_query) for row in page_rows]
        return context


class GalleryFaceView(ResearcherView, TemplateView):
    template_name = "gallery/face.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        params = gallery_params(self.request.GET)
        face = gallery_face_get(user=self.request.user, face_id=self.kwargs["pk"])
        detail = gallery_face_detail(face=face, version=params.version, user=self.request.user)
        figures = face_faithfulness(face=face, version=params.version)
        context.update(params=params, detail=detail, classes=list(enumerate(CLASSES)), methods=CAM_METHODS,
                       explanations=[{"row": e, "url": e.overlay.url, "target_class": CLASSES[e.target_label],
                                      "road": _figures(figures.get((e.method, e.layer, e.target_label)))}
                                     for e in detail.explanations],
                       back=reverse("gallery") + "?" + query_without(self.request.GET))
        return context


def _figures(measured: tuple[float, float] | None) -> tuple[str, str] | None:
    """A map's ROAD and the random map's, signed to three places (as the gallery tiles show them)."""
    return None if measured is None else (f"{measured[0]:+.3f}", f"{measured[1]:+.3f}")


def _confusion_rows(evaluation: dict, version: ModelVersion) -> list[dict]:
    """The normalized confusion matrix as table rows whose cells link to the gallery of that true/predicted pair."""
    metrics = evaluation["metrics"]
    rows = []
    for true, (normalized, counts) in enumerate(zip(metrics["confusion_normalized"], metrics["confusion"],
                                                    strict=True)):
        cells = [{"predicted": pred, "value": value, "count": count,
                  "url": reverse("gallery") + "?" + query_without({}, version=version.pk, split=evaluation["split"],
                                                                  true_label=true, predicted_label=pred),
                  "light": value > 0.5}
                 for pred, (value, count) in enumerate(zip(normalized, counts, strict=True))]
        rows.append({"true": true, "name": CLASSES[true], "cells": cells, "support": sum(counts)})
    return rows


class EvaluationView(ResearcherView, TemplateView):
    template_name = "gallery/evaluation.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        version = model_version_get(pk=self.kwargs["pk"])
        report = model_evaluation_report(version=version, user=self.request.user)
        for evaluation in report.evaluations:
            if evaluation["metrics"]:
                evaluation["confusion_rows"] = _confusion_rows(evaluation, version)
                evaluation["per_class"] = [{"name": name, **evaluation["metrics"]["per_class"][name]}
                                           for name in CLASSES]
        context.update(version=version, versions=model_version_list(), report=report, evaluations=report.evaluations,
                       distribution=report.class_distribution, history=report.history,
                       final_metrics=report.final_metrics, faithfulness=report.faithfulness,
                       published=report.published, measured=report.evaluations[0]["metrics"], methods=CAM_METHODS,
                       method=method_param(self.request.GET.get("method")), classes=list(enumerate(CLASSES)))
        return context


def _png(data: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(data, content_type="image/png")
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    return response


class ConfusionPngView(ResearcherView, ThrottledPageMixin, View):
    throttle_scope = "figures"

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        version = model_version_get(pk=pk)
        params = class_map_params(request.GET, splits=evaluation_splits(user=request.user))
        evaluation = model_evaluation(version=version, split=params.split)
        if not evaluation["metrics"]:
            raise NotFound(f"no predictions of this version on {params.split}")
        title = f"{version.name}: {params.split} (n={evaluation['predicted']}), row-normalized"
        return _png(exports.confusion_png(evaluation["metrics"]["confusion_normalized"], title),
                    f"confusion-v{version.pk}-{params.split}.png")


class CurvesPngView(ResearcherView, ThrottledPageMixin, View):
    throttle_scope = "figures"

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        version = model_version_get(pk=pk)
        history = training_history(version=version)
        if not history:
            raise NotFound("this version recorded no training history")
        return _png(exports.history_png(history, f"{version.name}: training curves"), f"curves-v{version.pk}.png")


class ClassMapsPngView(ResearcherView, ThrottledPageMixin, View):
    throttle_scope = "figures"

    """Mean Grad-CAM map per class (``by=true|predicted``) or for one confusion cell (``true=&predicted=``)."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        version = model_version_get(pk=pk)
        params = class_map_params(request.GET, splits=evaluation_splits(user=request.user))
        if params.cell is not None:
            true, pred = params.cell
            maps = class_maps(version=version, method=params.method, by="predicted", split=params.split)
            data = exports.cell_map_png(maps, true=true, predicted=pred, title=f"{version.name} {params.method}")
            return _png(data, f"cell-map-v{version.pk}-{params.method}-{true}-{pred}.png")
        maps = class_maps(version=version, method=params.method, by=params.by, split=params.split)
        title = f"{version.name}: mean {params.method} map per {params.by} class on {params.split}"
        return _png(exports.class_maps_png(maps, by=params.by, title=title),
                    f"class-maps-v{version.pk}-{params.method}.png")


class CompareView(ResearcherView, TemplateView):
    template_name = "gallery/compare.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        get = self.request.GET
        splits = _visible_splits(self.request)
        params = compare_params(get, splits=splits, required=False)
        a, b, method, split, changed_only = params.a, params.b, params.method, params.split, params.changed_only
        context.update(versions=list(model_version_list()), a=a, b=b, method=method, methods=CAM_METHODS, split=split,
                       splits=splits, changed_only=changed_only, query=query_without(get, "page"))
        if a is None or b is None:
            return context
        rows = compare_predictions(a=a, b=b, method=method, splits=splits, split=split, changed_only=changed_only)
        page = Paginator(rows, settings.GALLERY_PAGE_SIZE).get_page(get.get("page"))
        context.update(summary=compare_summary(a=a, b=b, splits=splits, split=split), page_obj=page, pairs=[{
            "face": row.face, "face_url": row.face.pixels.png.url,
            "true_class": CLASSES[row.face.current_label] if row.face.current_label is not None else "",
            "a_class": CLASSES[row.predicted_label], "a_confidence": row.confidence,
            "a_overlay": media_url(row.a_overlay),
            "b_class": CLASSES[row.b_label], "b_confidence": row.b_confidence, "b_overlay": media_url(row.b_overlay),
            "changed": row.predicted_label != row.b_label} for row in page.object_list])
        return context


class GalleryExportView(ResearcherView, ThrottledPageMixin, View):  # EXPORTS_THROTTLE_RATE
    """The gallery's current selection (same filters, every page, at most ``EXPORT_LIMIT`` faces) as a ZIP."""

    def get(self, request: HttpRequest) -> HttpResponse:
        params = gallery_params(request.GET)
        if params.version is None:
            raise NotFound("no active model version")
        rows = gallery_predictions(version=params.version, method=params.method, layer=params.layer,
                                   splits=_visible_splits(request))
        filterset = GalleryFilter(request.GET, queryset=rows)
        if not filterset.is_valid():
            return HttpResponseBadRequest(f"invalid filters: {filterset.errors.as_text()}", content_type="text/plain")
        archive = exports.gallery_zip(rows=filterset.qs, version=params.version, method=params.method,
                                      limit=EXPORT_LIMIT)
        return FileResponse(archive, as_attachment=True, content_type="application/zip",
                            filename=f"gallery-v{params.version.pk}-{params.method}.zip")
