"""API for what the gallery pages show (researchers and admins; reviewers get 403)."""

from __future__ import annotations

from django.conf import settings
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.roles import IsAdminRole, IsResearcher
from apps.core.schema import ERROR
from apps.core.throttles import ExplanationRateThrottle, WaitRateThrottle, WaitSlotThrottle
from apps.faces.models import Split
from apps.inference.api import EXPLANATION_PENDING, explanation_pending_response
from apps.inference.models import Prediction
from apps.inference.selectors import model_version_get
from apps.inference.serializers import ExplanationWaitSerializer
from apps.inference.services.explanations import explanation_request
from apps.inference.services.predictions import CAM_LAYERS, CAM_METHODS, FINE_LAYER_METHODS

from .filters import GalleryFilter
from .params import (
    GalleryParams,
    UnknownModelVersion,
    class_map_params,
    compare_params,
    gallery_params,
    model_version_param,
)
from .selectors import (
    class_maps_report,
    compare_predictions,
    evaluation_splits,
    gallery_face_detail,
    gallery_face_get,
    gallery_predictions,
    gallery_splits,
    model_evaluation_report,
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

VERSION = OpenApiParameter("version", OpenApiTypes.INT, description="Model version id; omitted: the active one.")
METHOD = OpenApiParameter("method", OpenApiTypes.STR, enum=list(CAM_METHODS), description="CAM method (gradcam).")
LAYER = OpenApiParameter("layer", OpenApiTypes.STR, enum=list(CAM_LAYERS),
                         description=f"CAM layer (last); fine only with {', '.join(FINE_LAYER_METHODS)} (else 400).")


class GalleryPagination(PageNumberPagination):
    def get_page_size(self, request: Request) -> int:
        return settings.GALLERY_PAGE_SIZE


def _visible_splits(request: Request) -> list[str]:
    return gallery_splits(user=request.user)


def _params(request: Request) -> GalleryParams:
    params = gallery_params(request.query_params)
    if params.version is None:
        raise UnknownModelVersion("no active model version; pass ?version=")
    return params


class GalleryFaceListApi(ListAPIView):
    """Faces predicted by a version, with the stored overlay of a CAM method for the predicted class."""

    permission_classes = [IsResearcher]
    serializer_class = GalleryFaceSerializer
    filterset_class = GalleryFilter
    pagination_class = GalleryPagination

    @extend_schema(parameters=[VERSION, METHOD, LAYER], responses={200: GalleryFaceSerializer(many=True), 400: ERROR,
                                                            404: ERROR})
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[Prediction]:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request parameters, no database
            return Prediction.objects.none()
        params = _params(self.request)
        return gallery_predictions(version=params.version, method=params.method, layer=params.layer,
                                   splits=_visible_splits(self.request))


class GalleryFaceDetailApi(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(parameters=[VERSION], responses={200: FaceDetailSerializer, 400: ERROR, 404: ERROR})
    def get(self, request: Request, pk: int) -> Response:
        """One face: the version's prediction and stored heatmaps, its label history and review votes."""
        face = gallery_face_get(user=request.user, face_id=pk)
        params = _params(request)
        detail = gallery_face_detail(face=face, version=params.version, user=request.user)
        return Response(FaceDetailSerializer(detail, context={"request": request}).data)


class GalleryExplanationApi(APIView):
    permission_classes = [IsResearcher]
    throttle_classes = [ExplanationRateThrottle, WaitRateThrottle, WaitSlotThrottle]

    @extend_schema(parameters=[ExplanationWaitSerializer], request=GalleryExplanationRequestSerializer,
                   responses={200: FaceExplanationSerializer, 202: EXPLANATION_PENDING, 400: ERROR, 404: ERROR,
                              503: ERROR})
    def post(self, request: Request, pk: int) -> Response:
        """A heatmap of this face by a version (default: active) for any class: 200 when stored (or once it lands
        within `?wait=` seconds), else 202 while a worker makes it."""
        face = gallery_face_get(user=request.user, face_id=pk)
        query = ExplanationWaitSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        body = GalleryExplanationRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        version = model_version_param(body.validated_data["version"])
        result = explanation_request(face=face, version=version, method=body.validated_data["method"],
                                     target_label=body.validated_data["target"], wait=query.validated_data["wait"],
                                     layer=body.validated_data["layer"])
        if result.pending:
            return explanation_pending_response(request, result)
        return Response(FaceExplanationSerializer(result.explanation, context={"request": request}).data)


class ModelEvaluationApi(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(responses={200: EvaluationSerializer, 404: ERROR})
    def get(self, request: Request, pk: int) -> Response:
        """Figures of a version from its stored predictions (PublicTest; PrivateTest only when enabled for admins),
        the training class distribution and weights, training history, faithfulness and the published figures."""
        report = model_evaluation_report(version=model_version_get(pk=pk), user=request.user)
        return Response(EvaluationSerializer(report).data)


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
        params = compare_params(self.request.query_params, splits=_visible_splits(self.request), required=True)
        return compare_predictions(a=params.a, b=params.b, method=params.method, splits=_visible_splits(self.request),
                                   split=params.split, changed_only=params.changed_only)


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
        version = model_version_get(pk=pk)
        params = class_map_params(request.query_params, splits=evaluation_splits(user=request.user))
        report = class_maps_report(version=version, method=params.method, by=params.by, split=params.split)
        return Response(ClassMapsSerializer(report).data)


class FaithfulnessQueueApi(APIView):
    permission_classes = [IsAdminRole]

    @extend_schema(request=FaithfulnessRequestSerializer,
                   responses={202: FaithfulnessQueuedSerializer, 400: ERROR, 404: ERROR})
    def post(self, request: Request, pk: int) -> Response:
        """Queue the ROAD faithfulness measurement of CAM methods for this version (admins; a run on the bulk queue,
        on the status page until it is done)."""
        version = model_version_get(pk=pk)
        body = FaithfulnessRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        run = faithfulness_enqueue(version=version, methods=data["methods"], layers=data["layers"],
                                   sample_size=data["sample_size"],
                                   split=data["split"], created_by=request.user)
        return Response(FaithfulnessQueuedSerializer(run).data, status=status.HTTP_202_ACCEPTED)
