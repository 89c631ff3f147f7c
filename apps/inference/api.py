"""API: model versions (list, activate), a face's prediction and heatmaps, on-demand explanations."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.roles import IsAdminRole, IsResearcher
from apps.core.schema import ERROR
from apps.core.throttles import ExplanationRateThrottle, WaitRateThrottle, WaitSlotThrottle
from apps.faces.selectors import face_get_for

from .selectors import explanations_for, model_version_get, model_version_list, prediction_active_get
from .serializers import (
    ExplanationPendingSerializer,
    ExplanationRequestSerializer,
    ExplanationSerializer,
    ExplanationWaitSerializer,
    ModelVersionSerializer,
    PredictionSerializer,
)
from .services.explanations import ExplanationRequest, explanation_request
from .services.registry import model_version_activate


class ModelVersionListApi(ListAPIView):
    """Model versions, newest first (researchers and admins)."""

    permission_classes = [IsResearcher]
    serializer_class = ModelVersionSerializer

    def get_queryset(self):
        return model_version_list()


class ModelVersionActivateApi(APIView):
    permission_classes = [IsAdminRole]

    @extend_schema(operation_id="models_activate_create", request=None,
                   responses={200: ModelVersionSerializer, 400: ERROR, 404: ERROR})
    def post(self, request: Request, pk: int) -> Response:
        """Make a ready or archived version the active one (by hand, whatever the promotion gate said); the
        previously active version is archived. Its PublicTest predictions (and, when it replaces a version, a
        label-scoring run) are queued."""
        version = model_version_activate(version=model_version_get(pk=pk), actor=request.user)
        return Response(ModelVersionSerializer(version).data)


@extend_schema_view(post=extend_schema(
    operation_id="models_promote", deprecated=True,
    description="Deprecated alias of `POST /api/models/{id}/activate`, kept for existing clients: the same view, "
                "the same answers. Use `activate`."))
class ModelVersionPromoteApi(ModelVersionActivateApi):
    """``/api/models/{id}/promote``: the activate endpoint under its old name (only its schema entry differs)."""


class FacePredictionApi(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(responses={200: PredictionSerializer, 404: ERROR})
    def get(self, request: Request, pk: int) -> Response:
        """The active version's prediction for this face, with the URLs of its stored heatmaps (faces the caller may
        see only: someone else's upload is a 404)."""
        face = face_get_for(user=request.user, face_id=pk)
        prediction = prediction_active_get(face=face)
        context = {"request": request, "explanations": explanations_for(face=face, version=prediction.model_version)}
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
    throttle_classes = [ExplanationRateThrottle, WaitRateThrottle, WaitSlotThrottle]

    @extend_schema(parameters=[ExplanationWaitSerializer], request=ExplanationRequestSerializer,
                   responses={200: ExplanationSerializer, 202: EXPLANATION_PENDING, 400: ERROR, 404: ERROR,
                              503: ERROR})
    def post(self, request: Request, pk: int) -> Response:
        """A heatmap of this face by the active version: 200 with it when it is stored (or lands within `?wait=`
        seconds), else 202: a worker makes it, never this request. Faces the caller may see only."""
        face = face_get_for(user=request.user, face_id=pk)
        query = ExplanationWaitSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        body = ExplanationRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        result = explanation_request(face=face, version=None, method=body.validated_data["method"],
                                     target_label=body.validated_data["target"], wait=query.validated_data["wait"],
                                     layer=body.validated_data["layer"])
        if result.pending:
            return explanation_pending_response(request, result)
        return Response(ExplanationSerializer(result.explanation, context={"request": request}).data)
