"""Grid review API: lease a page of faces that share a label, submit the page. Thin views over ``apps.review.grid``."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.roles import IsReviewer
from apps.core.schema import ERROR
from ml.labels import CLASSES, NUM_CLASSES

from . import selectors
from .choices import Choice
from .grid import GRID_SIZE_DEFAULT, GRID_SIZE_MAX, GRID_SIZE_MIN, GridMark, review_grid_lease, review_grid_page_submit
from .models import ReviewItem
from .serializers import ProgressSerializer


class GridQuerySerializer(serializers.Serializer):
    size = serializers.IntegerField(min_value=GRID_SIZE_MIN, max_value=GRID_SIZE_MAX, default=GRID_SIZE_DEFAULT,
                                    help_text=f"Faces on the page, {GRID_SIZE_MIN}-{GRID_SIZE_MAX}.")
    label = serializers.IntegerField(min_value=0, max_value=NUM_CLASSES - 1, required=False, allow_null=True,
                                     default=None, help_text="The faces' current label, 0-6; empty: the label of "
                                                             "the faces you hold, else the one with most faces.")


class GridItemSerializer(serializers.ModelSerializer):
    """A face on a page: what the reviewer sees before voting (no votes; gold items look like any other)."""

    face = serializers.IntegerField(source="face_id")
    image = serializers.SerializerMethodField()
    current_label = serializers.IntegerField(source="face.current_label")
    suggested_label_name = serializers.SerializerMethodField()

    class Meta:
        model = ReviewItem
        fields = ["id", "face", "image", "current_label", "suggested_label", "suggested_label_name",
                  "suggested_probability", "lease_expires_at"]

    @extend_schema_field(serializers.URLField())
    def get_image(self, item: ReviewItem) -> str:
        return self.context["request"].build_absolute_uri(item.face.pixels.png.url)

    def get_suggested_label_name(self, item: ReviewItem) -> str:
        return "" if item.suggested_label is None else CLASSES[item.suggested_label]


class GridLabelCountSerializer(serializers.Serializer):
    label = serializers.IntegerField()
    name = serializers.CharField()
    available = serializers.IntegerField(help_text="Open faces with this label you may take now.")


class GridPageSerializer(serializers.Serializer):
    label = serializers.IntegerField(allow_null=True, help_text="Null: nothing left for you.")
    label_name = serializers.CharField()
    items = GridItemSerializer(many=True)
    labels = GridLabelCountSerializer(many=True)
    progress = ProgressSerializer()


class GridMarkSerializer(serializers.Serializer):
    item = serializers.IntegerField(min_value=1)
    choice = serializers.ChoiceField(choices=Choice.choices, required=False, allow_null=True, default=None,
                                     help_text="The class for a marked face (0-6, 7 not a face, 8 unsure); null "
                                               "or absent: unmarked, a vote for the page's label.")


class GridSubmitSerializer(serializers.Serializer):
    label = serializers.IntegerField(min_value=0, max_value=NUM_CLASSES - 1, help_text="The page's label, 0-6.")
    items = GridMarkSerializer(many=True, help_text=f"Every face of the page, at most {GRID_SIZE_MAX}.")


class GridVoteResultSerializer(serializers.Serializer):
    item = serializers.IntegerField(source="item_id")
    choice = serializers.IntegerField()
    result = serializers.CharField(help_text="recorded, already_voted (an earlier submit stored it: counts as sent), "
                                             "label_changed (unmarked, the face no longer has the page's label: no "
                                             "vote), not_found or conflict (refused, as the one-by-one vote is).")
    stored = serializers.BooleanField(help_text="The server has this face's vote (recorded or already_voted).")
    item_status = serializers.CharField(allow_null=True)
    settled_label = serializers.IntegerField(allow_null=True)


class GridSubmitResultSerializer(serializers.Serializer):
    results = GridVoteResultSerializer(many=True)
    stored = serializers.IntegerField(help_text="Faces whose vote the server has.")
    progress = ProgressSerializer()


class GridPageApi(APIView):
    permission_classes = [IsReviewer]

    @extend_schema(operation_id="review_grid_page", parameters=[GridQuerySerializer],
                   responses={200: GridPageSerializer, 400: ERROR},
                   description="Lease a page of open faces that share a current label (most likely mislabelled "
                               "first; faces of that label you already hold come back first). Gold faces come in as "
                               "in the one-by-one queue and look the same; no votes are shown.")
    def get(self, request: Request) -> Response:
        query = GridQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        page = review_grid_lease(user=request.user, **query.validated_data)
        data = {"label": page.label, "label_name": "" if page.label is None else CLASSES[page.label],
                "items": page.items, "labels": [{"label": k, "name": CLASSES[k], "available": n} for k, n in
                                                page.labels],
                "progress": selectors.review_progress_for(user=request.user)}
        return Response(GridPageSerializer(data, context={"request": request}).data)


class GridSubmitApi(APIView):
    permission_classes = [IsReviewer]

    @extend_schema(operation_id="review_grid_votes", request=GridSubmitSerializer,
                   responses={200: GridSubmitResultSerializer, 400: ERROR},
                   description="Submit a page: every face is a vote, cast as POST /api/review/items/{id}/votes "
                               "casts it (same quorum, gold and blind rules): a marked face for its choice, an "
                               "unmarked one for the page's label. Per-face results; a page sent again counts once "
                               "(`already_voted`).")
    def post(self, request: Request) -> Response:
        body = GridSubmitSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        marks = [GridMark(item_id=m["item"], choice=m["choice"]) for m in body.validated_data["items"]]
        results = review_grid_page_submit(user=request.user, label=body.validated_data["label"], marks=marks)
        data = {"results": results, "stored": sum(r.stored for r in results),
                "progress": selectors.review_progress_for(user=request.user)}
        return Response(GridSubmitResultSerializer(data).data)
