"""API of data maps (researchers and admins): start a map, list maps, read one map with its points."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.roles import IsResearcher
from apps.core.models import WorkStatus
from apps.core.schema import ERROR
from apps.gallery.params import UnknownModelVersion, model_version_param

from .selectors import data_map_get_for, data_map_points, data_maps_visible_to
from .serializers import DataMapDetailSerializer, DataMapSerializer, DataMapStartSerializer
from .services import data_map_start


class DataMapListApi(ListAPIView):
    permission_classes = [IsResearcher]
    serializer_class = DataMapSerializer

    def get_queryset(self):
        return data_maps_visible_to(user=self.request.user)

    @extend_schema(responses={200: DataMapSerializer(many=True)})
    def get(self, request: Request, *args, **kwargs) -> Response:
        """Maps of the splits you may see, newest first (paged)."""
        return super().get(request, *args, **kwargs)

    @extend_schema(request=DataMapStartSerializer,
                   responses={202: DataMapSerializer, 200: DataMapSerializer, 400: ERROR, 404: ERROR})
    def post(self, request: Request) -> Response:
        """Queue a 2-D map of a split's pooled features for a model version (a job on the bulk queue). While one
        with the same version, split and method is queued or running, that one is answered (200) instead."""
        body = DataMapStartSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        version = model_version_param(data.get("model_version"))
        if version is None:
            raise UnknownModelVersion("no active model version; pass model_version")
        data_map, created = data_map_start(version=version, split=data["split"], method=data["method"],
                                           user=request.user)
        return Response(DataMapSerializer(data_map).data,
                        status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK)


class DataMapDetailApi(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(parameters=[OpenApiParameter("pk", OpenApiTypes.INT, OpenApiParameter.PATH)],
                   responses={200: DataMapDetailSerializer, 404: ERROR})
    def get(self, request: Request, pk: int) -> Response:
        """A map's state and progress; once it has succeeded, its points (compact parallel arrays)."""
        data_map = data_map_get_for(user=request.user, map_id=pk)
        points = data_map_points(data_map=data_map) if data_map.status == WorkStatus.SUCCEEDED else None
        return Response({**DataMapSerializer(data_map).data, "points": points})  # points: plain lists already
