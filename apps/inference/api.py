"""API: model versions (list, activate), a face's prediction and heatmaps, on-demand explanations, platform status."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
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
    ExplanationPendingSerializer,
    ExplanationRequestSerializer,
    ExplanationSerializer,
    ExplanationWaitSerializer,
    ModelVersionSerializer,
    PredictionSerializer,
    StatusSerializer,
)
from .services.explanations import ExplanationRequest, explanation_request
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


# The 200/202 pair of every on-demand heatmap endpoint (this one, the gallery's and the upload page's).
EXPLANATION_PENDING = OpenApiResponse(
    ExplanationPendingSerializer,
    description="Not stored yet: a worker makes it. Send the same request again (to `poll`, optionally with "
                "`?wait=SECONDS`) until it answers 200.")


def explanation_pending_response(request: Request, result: ExplanationRequest) -> Response:
    """202 with what to ask again: a worker has the heatmap."""
    return Response(ExplanationPendingSerializer(result, context={"request": request}).data,
                    status=status.HTTP_202_ACCEPTED)


class FaceExplanationCreateApi(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(parameters=[ExplanationWaitSerializer], request=ExplanationRequestSerializer,
                   responses={200: ExplanationSerializer, 202: EXPLANATION_PENDING, 400: ERROR, 404: ERROR,
                              503: ERROR})
    def post(self, request: Request, pk: int) -> Response:
        """A heatmap of this face by the active version: 200 with it when it is stored (or lands within `?wait=`
        seconds), else 202: a worker makes it, never this request. Faces the caller may see only."""
        face = get_object_or_404(faces_visible_to(request.user), pk=pk)
        query = ExplanationWaitSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        body = ExplanationRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        result = explanation_request(face=face, version=None, method=body.validated_data["method"],
                                     target_label=body.validated_data["target"], wait=query.validated_data["wait"])
        if result.pending:
            return explanation_pending_response(request, result)
        return Response(ExplanationSerializer(result.explanation, context={"request": request}).data)


class StatusApi(APIView):
    permission_classes = [IsAdminRole]

    @extend_schema(responses=StatusSerializer, description=(
        "What the status page shows, for scripts and monitors. `queue_details`: per queue, the messages waiting in "
        "the broker (null: broker down), the workers consuming it, and the age of its oldest queued job. "
        "`jobs_by_kind`: per kind of job, queued, running and failed rows, the latest failures, and rows that look "
        "lost (running with no heartbeat, queued and never sent, or sent with no message left in the broker) with "
        "what the sweeper will do about them. `alerts` lists every red or amber finding in a sentence; `level` is "
        "the worst. Each probe answers within about a second: a broker that is down is reported, not raised."))
    def get(self, request: Request) -> Response:
        """Queues, jobs by kind, workers, active model, database and broker health (admins)."""
        return Response(platform_status())
