"""API of the platform core: the operations status (admins)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.roles import IsAdminRole

from .serializers import StatusSerializer
from .status import platform_status


class StatusApi(APIView):
    permission_classes = [IsAdminRole]

    @extend_schema(responses=StatusSerializer, description=(
        "What the status page shows, for scripts and monitors. `queue_details`: per queue, the messages waiting in "
        "the broker (null: broker down), the workers consuming it, the age of its oldest queued job and what the "
        "queued jobs wait their turn behind. `jobs_by_kind`: per kind of job, queued, running and failed rows, the "
        "latest failures, and rows that look lost (running with no heartbeat, queued and never sent, or sent with no "
        "message left in the broker) with what the sweeper will do about them. `alerts` lists every red or amber "
        "finding in a sentence; `level` is the worst. Each probe answers within about a second: a broker that is "
        "down is reported, not raised."))
    def get(self, request: Request) -> Response:
        """Queues, jobs by kind, workers, active model, database and broker health (admins)."""
        return Response(platform_status())
