"""Upload endpoints: create (one or many files), list your own, read one (optionally waiting), its photo, request a
heatmap of one of its faces."""

from __future__ import annotations

from urllib.parse import quote

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import FileResponse, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.errors import ErrorSerializer
from apps.core.parsers import BoundedJSONParser
from apps.core.throttles import ExplanationRateThrottle, UploadRateThrottle, WaitRateThrottle, WaitSlotThrottle
from apps.inference.api import EXPLANATION_PENDING, explanation_pending_response
from apps.inference.serializers import ExplanationWaitSerializer

from .explanations import upload_explanation_request
from .images import PHOTO_CONTENT_TYPE
from .selectors import PhotoNotKept, upload_get_for, upload_list_for, upload_photo_name, upload_results
from .serializers import (
    UploadCreateQuerySerializer,
    UploadExplanationRequestSerializer,
    UploadHeatmapSerializer,
    UploadResultSerializer,
    WaitSerializer,
)
from .services import upload_create, upload_results_wait

FILE_FIELDS = ("images", "image")


class UploadPagination(PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


_WAIT = OpenApiParameter("wait", OpenApiTypes.FLOAT, description="Seconds to wait for a finished result (bounded).")


class UploadListCreateApi(APIView):
    permission_classes = [IsAuthenticated]
    parser_classes = [MultiPartParser, FormParser]
    throttle_classes = [UploadRateThrottle, WaitRateThrottle, WaitSlotThrottle]
    pagination_class = UploadPagination  # the schema reads it: GET declares the page ({count, next, ...}) and params

    @extend_schema(responses=UploadResultSerializer(many=True))
    def get(self, request: Request) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(upload_list_for(user=request.user), request, view=self)
        results = upload_results(page)
        return paginator.get_paginated_response(
            UploadResultSerializer(results, many=True, context={"request": request}).data)

    @extend_schema(
        parameters=[UploadCreateQuerySerializer],
        request={"multipart/form-data": inline_serializer("UploadFiles", {
            "images": serializers.ListField(child=serializers.FileField(), required=False),
            "image": serializers.FileField(required=False),
        })},
        responses={
            201: inline_serializer("UploadCreated", {"uploads": UploadResultSerializer(many=True)}),
            413: OpenApiResponse(ErrorSerializer, description="A file over UPLOADS_MAX_BYTES or UPLOADS_MAX_PIXELS, a "
                                 "decompression bomb, or a request over UPLOADS_MAX_REQUEST_PIXELS in all."),
            415: OpenApiResponse(ErrorSerializer, description="A file that is not an accepted image, or a body that "
                                 "is not multipart."),
        },
    )
    def post(self, request: Request) -> Response:
        query = UploadCreateQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        files = [f for field in FILE_FIELDS for f in request.FILES.getlist(field)]
        methods = query.validated_data["methods"]
        if methods is None and "methods" in request.data:
            methods = [m.strip() for value in request.data.getlist("methods") for m in value.split(",") if m.strip()]
        uploads = upload_create(user=request.user, files=files, no_face=query.validated_data["no_face"],
                                methods=methods)
        results = upload_results_wait(uploads=uploads, timeout=query.validated_data["wait"])
        data = UploadResultSerializer(results, many=True, context={"request": request}).data
        return Response({"uploads": data}, status=status.HTTP_201_CREATED)


class UploadDetailApi(APIView):
    permission_classes = [IsAuthenticated]
    throttle_classes = [WaitRateThrottle, WaitSlotThrottle]  # a plain read is not limited; one that waits is

    @extend_schema(parameters=[_WAIT], responses=UploadResultSerializer)
    def get(self, request: Request, upload_id) -> Response:
        query = WaitSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        upload = upload_get_for(user=request.user, upload_id=upload_id)
        (result,) = upload_results_wait(uploads=[upload], timeout=query.validated_data["wait"])
        return Response(UploadResultSerializer(result, context={"request": request}).data)


class UploadExplanationApi(APIView):
    """One heatmap on demand, made by a worker: the CAM-method switcher of the upload page uses it."""

    permission_classes = [IsAuthenticated]
    parser_classes = [BoundedJSONParser, FormParser, MultiPartParser]
    throttle_classes = [ExplanationRateThrottle, WaitRateThrottle, WaitSlotThrottle]

    @extend_schema(parameters=[ExplanationWaitSerializer], request=UploadExplanationRequestSerializer, responses={
        200: UploadHeatmapSerializer,
        202: EXPLANATION_PENDING,
        404: OpenApiResponse(ErrorSerializer, description="No such upload of yours, or no face of that index in it."),
        409: OpenApiResponse(ErrorSerializer, description="No prediction yet, or no face in the upload."),
    })
    def post(self, request: Request, upload_id) -> Response:
        """200 with the heatmap when it is stored (or lands within `?wait=` seconds), else 202 while a worker makes
        it: this request never does."""
        # First: someone else's upload is a 404, whatever the body says.
        upload = upload_get_for(user=request.user, upload_id=upload_id)
        query = ExplanationWaitSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        body = UploadExplanationRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        result = upload_explanation_request(upload=upload, method=body.validated_data["method"],
                                            target=body.validated_data["target"], face=body.validated_data["face"],
                                            wait=query.validated_data["wait"])
        if result.pending:
            return explanation_pending_response(request, result)
        return Response(UploadHeatmapSerializer(result.explanation, context={"request": request}).data)


class UploadPhotoApi(APIView):
    """The photo of an upload as people see it, for drawing its face boxes on: the owner's and admins' only."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={
        (200, PHOTO_CONTENT_TYPE): OpenApiResponse(OpenApiTypes.BINARY, description="EXIF-oriented JPEG, at most "
                                                   "1280 pixels a side; the face boxes are in the upload's width x "
                                                   "height, so scale them to the image shown."),
        410: OpenApiResponse(ErrorSerializer, description="An upload made before photos were kept."),
    })
    def get(self, request: Request, upload_id) -> HttpResponse:
        upload = upload_get_for(user=request.user, upload_id=upload_id)
        name = upload_photo_name(upload=upload)
        # As /media/ is served (apps.core.views.media_serve): streamed here, or by nginx after this access check.
        if settings.MEDIA_X_ACCEL_PREFIX:
            response = HttpResponse(content_type=PHOTO_CONTENT_TYPE)
            response["X-Accel-Redirect"] = settings.MEDIA_X_ACCEL_PREFIX.rstrip("/") + "/" + quote(name)
        else:
            try:
                response = FileResponse(default_storage.open(name, "rb"), content_type=PHOTO_CONTENT_TYPE)
            except FileNotFoundError:
                raise PhotoNotKept(f"the photo of upload {upload.pk} is missing from storage") from None
        response["Cache-Control"] = "private, max-age=300"  # personal: never in a shared cache
        response["X-Content-Type-Options"] = "nosniff"
        return response
