"""API: model versions (list, activate), a face's prediction and heatmaps, on-demand explanations, platform status."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.roles import IsAdminRole, IsResearcher
from apps.core.errors import NotFound
from apps.core.schema import ERROR
from apps.faces.selectors import faces_visible_to

from .models import ModelVersion
from .selectors import explanations_for, model_version_active, model_version_list, prediction_for
from .serializers import (
    ExplanationRequestSerializer,
    ExplanationSerializer,
    ModelVersionSerializer,
    PredictionSerializer,
    StatusSerializer,
)
from .services.predictions import explanation_get_or_compute
from .services.registry import model_version_activate
from .status import platform_status


class ModelVersionListApi(ListAPIView):
    """Model versions, newest first (researchers and admins)."""

    permission_classes = [IsResearcher]
    serializer_class = ModelVersionSerializer

    def get_queryset(self):
        return model_version_list()


class ModelVersionActivateApi(APIView):
    permission_classes = [IsAdminRole]

    @extend_schema(request=None, responses={200: ModelVersionSerializer, 400: ERROR, 404: ERROR})
    def post(self, request: Request, pk: int) -> Response:
        """Make this version the active one; the previously active version is archived. Its PublicTest predictions
        (and, when it replaces a version, a label-scoring run) are queued: the same service as ``promote``."""
        version = get_object_or_404(ModelVersion, pk=pk)
        version = model_version_activate(version=version, actor=request.user)
        return Response(ModelVersionSerializer(version).data)


class FacePredictionApi(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(responses={200: PredictionSerializer, 404: ERROR})
    def get(self, request: Request, pk: int) -> Response:
        """The active version's prediction for this face, with the URLs of its stored heatmaps (faces the caller may
        see only: someone else's upload is a 404)."""
        face = get_object_or_404(faces_visible_to(request.user), pk=pk)
        version = model_version_active()
        prediction = prediction_for(face=face, version=version) if version else None
        if prediction is None:
            detail = "no active model version" if version is None else "not predicted by the active version yet"
            raise NotFound(detail)
        context = {"request": request, "explanations": explanations_for(face=face, version=version)}
        return Response(PredictionSerializer(prediction, context=context).data)


class FaceExplanationCreateApi(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(request=ExplanationRequestSerializer,
                   responses={200: ExplanationSerializer, 400: ERROR, 404: ERROR, 503: ERROR})
    def post(self, request: Request, pk: int) -> Response:
        """A heatmap of this face by the active version: returned if stored, else computed now (then stored). Faces
        the caller may see only."""
        face = get_object_or_404(faces_visible_to(request.user), pk=pk)
        body = ExplanationRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        explanation = explanation_get_or_compute(face=face, version=None, method=body.validated_data["method"],
                                                 target_label=body.validated_data["target"])
        return Response(ExplanationSerializer(explanation, context={"request": request}).data)


class StatusApi(APIView):
    permission_classes = [IsAdminRole]

    @extend_schema(responses=StatusSerializer)
    def get(self, request: Request) -> Response:
        """Workers (queues, device), queue lengths, active model, database and broker health (admins)."""
        return Response(platform_status())
