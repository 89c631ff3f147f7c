"""Near-duplicates API: the latest search's groups (researchers) and starting a search (admins)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.roles import IsAdminRole, IsResearcher
from apps.core.schema import ERROR

from .near_duplicates import near_duplicate_run_start
from .selectors import near_duplicates_overview
from .serializers import NearDuplicateQuerySerializer, NearDuplicateRunSerializer, NearDuplicatesSerializer


class NearDuplicatesApi(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(operation_id="near_duplicates_list", parameters=[NearDuplicateQuerySerializer],
                   responses={200: NearDuplicatesSerializer, 400: ERROR})
    def get(self, request: Request) -> Response:
        """Groups of near-duplicate faces from the latest succeeded search (conflicting and cross-split first), with
        the count of PublicTest faces that have a near-duplicate in Training. ``state`` is ``pending`` while the
        first search runs."""
        query = NearDuplicateQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(NearDuplicatesSerializer(near_duplicates_overview(user=request.user,
                                                                          **query.validated_data)).data)


class NearDuplicateRunsApi(APIView):
    permission_classes = [IsAdminRole]

    @extend_schema(operation_id="near_duplicate_runs_start", request=None,
                   responses={202: NearDuplicateRunSerializer, 409: ERROR},
                   description="Queue a near-duplicate search over every split with the active model version "
                               "(task faces.near_duplicates, queue bulk). 409 while one is queued or running, or "
                               "when no version is active.")
    def post(self, request: Request) -> Response:
        run = near_duplicate_run_start(created_by=request.user)
        return Response(NearDuplicateRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)
