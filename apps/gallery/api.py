"""API for what the gallery pages show (researchers and admins; reviewers get 403)."""

from __future__ import annotations

import numpy as np
from django.conf import settings
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.roles import IsAdminRole, IsResearcher, Role, user_has_role
from apps.faces.labels import CLASSES
from apps.faces.models import FaceImage, Split
from apps.inference.models import ModelVersion, Prediction
from apps.inference.services import (
    CAM_METHODS,
    DEFAULT_METHODS,
    NoActiveModelVersion,
    UnknownCamMethod,
    cam_method_validate,
    explanation_get_or_compute,
)

from .filters import GalleryFilter
from .params import GalleryParams, gallery_params
from .selectors import (
    PUBLISHED_FIGURES,
    GalleryParamError,
    class_maps,
    compare_predictions,
    evaluation_splits,
    faithfulness_for,
    gallery_face_detail,
    gallery_predictions,
    gallery_splits,
    model_evaluation,
    model_version_for,
    training_class_distribution,
    training_history,
)
from .serializers import (
    ClassMapsSerializer,
    ComparePairSerializer,
    EvaluationSerializer,
    FaceDetailSerializer,
    FaceExplanationSerializer,
    FaithfulnessQueuedSerializer,
    FaithfulnessRequestSerializer,
    GalleryExplanationRequestSerializer,
    GalleryFaceSerializer,
)
from .services import faithfulness_enqueue

ERROR = OpenApiResponse(description='JSON error: {"detail": "..."} or field errors')
VERSION = OpenApiParameter("version", OpenApiTypes.INT, description="Model version id; omitted: the active one.")
METHOD = OpenApiParameter("method", OpenApiTypes.STR, enum=list(CAM_METHODS), description="CAM method (gradcam).")


class GalleryPagination(PageNumberPagination):
    def get_page_size(self, request: Request) -> int:
        return settings.GALLERY_PAGE_SIZE


def _visible_splits(request: Request) -> list[str]:
    return gallery_splits(user_is_admin=user_has_role(request.user, Role.ADMIN))


def _params(request: Request) -> GalleryParams:
    try:
        params = gallery_params(request.query_params)
    except GalleryParamError as exc:
        raise ValidationError({"detail": str(exc)}) from None
    if params.version is None:
        raise NotFound("no active model version; pass ?version=")
    return params


class GalleryFaceListApi(ListAPIView):
    """Faces predicted by a version, with the stored overlay of a CAM method for the predicted class."""

    permission_classes = [IsResearcher]
    serializer_class = GalleryFaceSerializer
    filterset_class = GalleryFilter
    pagination_class = GalleryPagination

    @extend_schema(parameters=[VERSION, METHOD], responses={200: GalleryFaceSerializer(many=True), 400: ERROR,
                                                            404: ERROR})
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[Prediction]:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request parameters, no database
            return Prediction.objects.none()
        params = _params(self.request)
        return gallery_predictions(version=params.version, method=params.method, splits=_visible_splits(self.request))


class GalleryFaceDetailApi(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(parameters=[VERSION], responses={200: FaceDetailSerializer, 400: ERROR, 404: ERROR})
    def get(self, request: Request, pk: int) -> Response:
        """One face: the version's prediction and stored heatmaps, its label history and review votes."""
        face = get_object_or_404(FaceImage.objects.select_related("pixels"), pk=pk, split__in=_visible_splits(request))
        params = _params(request)
        detail = gallery_face_detail(face=face, version=params.version)
        return Response(FaceDetailSerializer(detail, context={"request": request}).data)


class GalleryExplanationApi(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(request=GalleryExplanationRequestSerializer,
                   responses={200: FaceExplanationSerializer, 400: ERROR, 404: ERROR, 503: ERROR})
    def post(self, request: Request, pk: int) -> Response:
        """A heatmap of this face by a version (default: active) for any class: stored, or computed now."""
        face = get_object_or_404(FaceImage, pk=pk, split__in=_visible_splits(request))
        body = GalleryExplanationRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            version = model_version_for(body.validated_data["version"])
            explanation = explanation_get_or_compute(face=face, version=version, method=body.validated_data["method"],
                                                     target_label=body.validated_data["target"])
        except GalleryParamError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_404_NOT_FOUND)
        except NoActiveModelVersion as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        except ValueError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(FaceExplanationSerializer(explanation, context={"request": request}).data)


class ModelEvaluationApi(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(responses={200: EvaluationSerializer, 404: ERROR})
    def get(self, request: Request, pk: int) -> Response:
        """Figures of a version from its stored predictions (PublicTest; PrivateTest only when enabled for admins),
        the training class distribution and weights, training history, faithfulness and the published figures."""
        version = get_object_or_404(ModelVersion, pk=pk)
        splits = evaluation_splits(user_is_admin=user_has_role(request.user, Role.ADMIN))
        evaluations = [model_evaluation(version=version, split=split) for split in splits]
        return Response({
            "model_version": version.pk,
            "evaluations": [e for e in evaluations if e["split"] == Split.PUBLIC_TEST or e["faces"]],
            "class_distribution": training_class_distribution(version=version),
            "history": training_history(version=version),
            "faithfulness": [{"method": f.method, "metric": f.metric, "split": f.split, "mean": f.mean, "std": f.std,
                              "sample_size": f.sample_size, "percentiles": f.percentiles}
                             for f in faithfulness_for(version=version)],
            "published": [{**figure, "measured_here": False} for figure in PUBLISHED_FIGURES],
        })


class CompareApi(ListAPIView):
    """Faces both versions predicted, side by side; ``changed=1`` (the default) keeps those whose prediction
    changed."""

    permission_classes = [IsResearcher]
    serializer_class = ComparePairSerializer
    pagination_class = GalleryPagination
    filter_backends: list = []

    @extend_schema(parameters=[
        OpenApiParameter("a", OpenApiTypes.INT, required=True, description="Model version id."),
        OpenApiParameter("b", OpenApiTypes.INT, required=True, description="Model version id."),
        METHOD,
        OpenApiParameter("split", OpenApiTypes.STR, enum=list(Split.values)),
        OpenApiParameter("changed", OpenApiTypes.BOOL, description="Only changed predictions (default true)."),
    ], responses={200: ComparePairSerializer(many=True), 400: ERROR, 404: ERROR})
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[Prediction]:
        if getattr(self, "swagger_fake_view", False):
            return Prediction.objects.none()
        query = self.request.query_params
        missing = {key: "a model version id is required" for key in ("a", "b") if not query.get(key)}
        if missing:
            raise ValidationError(missing)
        try:
            a, b = model_version_for(query["a"]), model_version_for(query["b"])
            method = cam_method_validate(query.get("method") or DEFAULT_METHODS[0])
        except (GalleryParamError, UnknownCamMethod) as exc:
            raise ValidationError({"detail": str(exc)}) from None
        split = query.get("split", "")
        if split and split not in Split.values:
            raise ValidationError({"split": f"choose one of {', '.join(Split.values)}"})
        changed_only = query.get("changed", "true").lower() not in ("0", "false", "no")
        return compare_predictions(a=a, b=b, method=method, splits=_visible_splits(self.request), split=split,
                                   changed_only=changed_only)


class ClassMapsApi(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(parameters=[
        METHOD,
        OpenApiParameter("by", OpenApiTypes.STR, enum=["predicted", "true"],
                         description="Group the maps of the predicted class by it (and by confusion cell), or the "
                                     "maps of the current label by it."),
        OpenApiParameter("split", OpenApiTypes.STR, enum=[Split.PUBLIC_TEST, Split.PRIVATE_TEST]),
    ], responses={200: ClassMapsSerializer, 400: ERROR, 404: ERROR})
    def get(self, request: Request, pk: int) -> Response:
        """Mean stored 48x48 maps (values 0-1) per class and, for ``by=predicted``, per (true, predicted) cell."""
        version = get_object_or_404(ModelVersion, pk=pk)
        query = request.query_params
        by = query.get("by") or "predicted"
        split = query.get("split") or Split.PUBLIC_TEST
        if by not in ("predicted", "true"):
            raise ValidationError({"by": "choose predicted or true"})
        if split not in evaluation_splits(user_is_admin=user_has_role(request.user, Role.ADMIN)):
            raise ValidationError({"split": "unknown or hidden split"})
        try:
            method = cam_method_validate(query.get("method") or DEFAULT_METHODS[0])
        except UnknownCamMethod as exc:
            raise ValidationError({"method": str(exc)}) from None
        maps = class_maps(version=version, method=method, by=by, split=split)

        def entry(key) -> dict:
            mean = maps.mean(key)
            return {"count": maps.count(key), "mean": None if mean is None else np.round(mean, 4).tolist()}

        classes = {name: entry(label) for label, name in enumerate(CLASSES)}
        cells = [{"true": CLASSES[t], "predicted": CLASSES[p], **entry((t, p))}
                 for t, p in sorted(k for k in maps.keys() if isinstance(k, tuple))]
        return Response({"model_version": version.pk, "method": method, "by": by, "split": split,
                         "classes": classes, "cells": cells})


class FaithfulnessQueueApi(APIView):
    permission_classes = [IsAdminRole]

    @extend_schema(request=FaithfulnessRequestSerializer,
                   responses={202: FaithfulnessQueuedSerializer, 400: ERROR, 404: ERROR})
    def post(self, request: Request, pk: int) -> Response:
        """Queue the ROAD faithfulness measurement of CAM methods for this version (admins; runs on a gpu worker)."""
        version = get_object_or_404(ModelVersion, pk=pk)
        body = FaithfulnessRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        try:
            methods = faithfulness_enqueue(version=version, methods=data["methods"], sample_size=data["sample_size"],
                                           split=data["split"])
        except UnknownCamMethod as exc:
            return Response({"methods": [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
        return Response({"model_version": version.pk, "methods": methods, "sample_size": data["sample_size"],
                         "split": data["split"]}, status=status.HTTP_202_ACCEPTED)
