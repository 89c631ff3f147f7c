"""Training API (admins): start, list, read, cancel and retry runs; roll back and compare model versions (activating
one is ``POST /api/models/{id}/activate``, apps.inference.api)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.roles import IsAdminRole
from apps.core.schema import ERROR
from apps.inference.serializers import ModelVersionSerializer
from apps.inference.services.registry import model_version_rollback

from .models import TrainingRun
from .selectors import model_versions_compared, training_run_get, training_run_list
from .serializers import (
    ModelVersionComparisonSerializer,
    TrainingRunInputSerializer,
    TrainingRunListItemSerializer,
    TrainingRunSerializer,
)
from .services import training_run_cancel, training_run_retry, training_run_start

LIST_LIMIT = 50


class TrainingRunsApi(APIView):
    permission_classes = [IsAdminRole]

    @extend_schema(operation_id="training_runs_list", responses=TrainingRunListItemSerializer(many=True))
    def get(self, request: Request) -> Response:
        """The latest 50 runs, newest first, with progress, metrics, the gate's decision and the end of each log
        (the whole log: ``GET /api/training-runs/{id}/``)."""
        return Response(TrainingRunListItemSerializer(training_run_list()[:LIST_LIMIT], many=True).data)

    @extend_schema(operation_id="training_runs_start", request=TrainingRunInputSerializer,
                   responses={202: TrainingRunSerializer, 400: ERROR, 409: ERROR},
                   description="Queue a training run (task training.run on the bulk queue). Refused with 409 while "
                               "another run is queued or running: only one run trains at a time.")
    def post(self, request: Request) -> Response:
        body = TrainingRunInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        # Token requests are API clients; session requests come from the training page.
        trigger = TrainingRun.Trigger.API if request.auth is not None else TrainingRun.Trigger.ADMIN
        run = training_run_start(trigger=trigger, created_by=request.user, recipe_name=data["recipe"],
                                 epochs=data["epochs"], seed=data["seed"], soft_label_mode=data["soft_label_mode"],
                                 exclude_cross_split_duplicates=data["exclude_cross_split_duplicates"])
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class TrainingRunDetailApi(APIView):
    permission_classes = [IsAdminRole]

    @extend_schema(operation_id="training_runs_retrieve", responses={200: TrainingRunSerializer, 404: ERROR})
    def get(self, request: Request, pk: int) -> Response:
        return Response(TrainingRunSerializer(training_run_get(pk=pk)).data)


class TrainingRunCancelApi(APIView):
    permission_classes = [IsAdminRole]

    @extend_schema(operation_id="training_runs_cancel", request=None,
                   responses={200: TrainingRunSerializer, 404: ERROR, 409: ERROR})
    def post(self, request: Request, pk: int) -> Response:
        """Cancel a queued run at once, or a running one at its next progress event."""
        run = training_run_cancel(run_id=pk)
        return Response(TrainingRunSerializer(run).data)


class TrainingRunRetryApi(APIView):
    permission_classes = [IsAdminRole]

    @extend_schema(operation_id="training_runs_retry", request=None,
                   responses={202: TrainingRunSerializer, 404: ERROR, 409: ERROR})
    def post(self, request: Request, pk: int) -> Response:
        """Queue a failed run again; it resumes from its last finished epoch on the same label snapshot."""
        run = training_run_retry(run_id=pk)
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class ModelVersionRollbackApi(APIView):
    permission_classes = [IsAdminRole]

    @extend_schema(operation_id="models_rollback", request=None, responses={200: ModelVersionSerializer, 400: ERROR})
    def post(self, request: Request) -> Response:
        """Activate the version that was active before the current one."""
        version = model_version_rollback(actor=request.user)
        return Response(ModelVersionSerializer(version).data)


class ModelVersionComparisonApi(APIView):
    permission_classes = [IsAdminRole]

    @extend_schema(operation_id="models_comparison", responses=ModelVersionComparisonSerializer(many=True))
    def get(self, request: Request) -> Response:
        """Before and after: every version's PublicTest accuracy and macro-F1 against current and original labels,
        and the change from the version before it."""
        return Response(ModelVersionComparisonSerializer(model_versions_compared(), many=True).data)
