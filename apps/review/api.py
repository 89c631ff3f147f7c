"""Review API: thin views over the services and selectors. Reviewers and admins only (researchers: exports)."""

from __future__ import annotations

import json

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.roles import IsAdminRole, IsResearcher, IsReviewer, Role, user_has_role
from apps.core.schema import ERROR
from apps.core.throttles import ExportRateThrottle
from apps.faces.selectors import face_splits_visible_to, faces_visible_to

from . import selectors, serializers, services
from .exports import ferplus_csv_rows, history_csv_rows, kaggle_csv_rows
from .overlays import review_item_model_view, review_item_overlays_enqueue
from .scoring import scoring_run_cancel, scoring_run_enqueue, scoring_run_resume


def _item_context(request: Request) -> dict:
    return {"request": request, "is_admin": user_has_role(request.user, Role.ADMIN)}


class NextItemsApi(APIView):
    permission_classes = [IsReviewer]

    @extend_schema(
        operation_id="review_items_next",
        parameters=[OpenApiParameter("count", int, description="How many items to lease (prefetch), at most "
                                                                "REVIEW_PREFETCH.")],
        responses=serializers.NextItemsSerializer,
        description="Lease the next items for the current reviewer (most likely mislabelled first). Items already "
                    "leased to the reviewer come back first. No votes are shown (blind voting).",
    )
    def get(self, request: Request) -> Response:
        query = serializers.NextQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        items = services.review_item_next_for(user=request.user, count=query.validated_data["count"])
        review_item_overlays_enqueue(items=items)  # stored by the time the reviewer reaches them, usually
        data = {"items": items, "progress": selectors.review_progress_for(user=request.user)}
        return Response(serializers.NextItemsSerializer(data, context=_item_context(request)).data)


class VoteCastApi(APIView):
    permission_classes = [IsReviewer]

    @extend_schema(operation_id="review_items_vote", request=serializers.ChoiceInputSerializer,
                   responses={201: serializers.VoteResultSerializer, 404: ERROR, 409: ERROR},
                   description="Your vote on an item leased to you (its lease, even just run out, while nobody took "
                               "it since; admins: any open item). Your vote already stored in the item's round: "
                               "409 `already_voted` (a resent vote counts as sent). Any other item (leased to "
                               "someone else, settled, disputed, gold or missing): 404 `not_found`, the same answer "
                               "for all.")
    def post(self, request: Request, item_id: int) -> Response:
        body = serializers.ChoiceInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        vote = services.review_vote_cast(user=request.user, item_id=item_id, choice=body.validated_data["choice"])
        item = vote.item  # the row the service locked and updated, as committed
        data = {"vote": vote, "item_status": item.status, "settled_label": item.settled_label,
                "progress": selectors.review_progress_for(user=request.user)}
        return Response(serializers.VoteResultSerializer(data).data, status=status.HTTP_201_CREATED)


class VoteUndoApi(APIView):
    permission_classes = [IsReviewer]

    @extend_schema(operation_id="review_votes_undo", request=None,
                   responses={200: serializers.UndoResultSerializer, 404: ERROR, 409: ERROR},
                   description="Withdraw your last vote within REVIEW_UNDO_SECONDS of casting it; a settlement it "
                               "made is reverted. The item is leased back to you so you can vote again. 409 "
                               "`vote_final`: past that window (the round's votes may have been shown to you); 409 "
                               "`undo_used`: you took back a vote on this item in this round already; 409 "
                               "`item_leased`: another reviewer holds the item now; 409 `conflict`: an admin "
                               "decided or reopened it. Nothing changes on a 409.")
    def post(self, request: Request) -> Response:
        vote = services.review_vote_undo(user=request.user)
        item = selectors.review_item_detail(item_id=vote.item_id)
        data = {"item": item, "item_status": item.status, "undone_choice": vote.choice,
                "progress": selectors.review_progress_for(user=request.user)}
        return Response(serializers.UndoResultSerializer(data, context=_item_context(request)).data)


class SkipApi(APIView):
    permission_classes = [IsReviewer]

    @extend_schema(operation_id="review_items_skip", request=None, responses={204: None})
    def post(self, request: Request, item_id: int) -> Response:
        services.review_item_skip(user=request.user, item_id=item_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ReopenApi(APIView):
    permission_classes = [IsAdminRole]

    @extend_schema(operation_id="review_items_reopen", request=None,
                   responses={200: serializers.ReviewItemDetailSerializer, 409: ERROR})
    def post(self, request: Request, item_id: int) -> Response:
        services.review_item_reopen(admin=request.user, item_id=item_id)
        return _detail_response(request, item_id)


class SettleApi(APIView):
    permission_classes = [IsAdminRole]

    @extend_schema(operation_id="review_items_settle", request=serializers.ChoiceInputSerializer,
                   responses={200: serializers.ReviewItemDetailSerializer, 409: ERROR},
                   description="An admin decides an item (e.g. a disputed one): 0-6 or 7 (not a face).")
    def post(self, request: Request, item_id: int) -> Response:
        body = serializers.ChoiceInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.review_item_settle_admin(admin=request.user, item_id=item_id,
                                          choice=body.validated_data["choice"])
        return _detail_response(request, item_id)


def _detail_response(request: Request, item_id: int) -> Response:
    item = selectors.review_item_for(user=request.user, item_id=item_id)
    context = {**_item_context(request), "blind": selectors.blind_review_for(user=request.user, item_ids=[item.pk])}
    return Response(serializers.ReviewItemDetailSerializer(item, context=context).data)


class ItemDetailApi(APIView):
    permission_classes = [IsReviewer]

    @extend_schema(operation_id="review_items_detail", responses=serializers.ReviewItemDetailSerializer,
                   description="An item with its label history, blind: `votes` is null until you hold a final "
                               "counted vote in the current round (not unsure, past the undo window), and history "
                               "entries show votes only of rounds where you hold one. Reviewers read only items "
                               "leased to them or voted on (others: 404).")
    def get(self, request: Request, item_id: int) -> Response:
        return _detail_response(request, item_id)


class ModelViewApi(APIView):
    permission_classes = [IsReviewer]

    @extend_schema(operation_id="review_items_model", responses=serializers.ModelViewSerializer,
                   description="The active model's prediction and stored Grad-CAM overlays (current label, "
                               "suggestion); `model_active` is false when no model version is active. Nothing is "
                               "computed here: `pending` names the overlays a worker is computing; ask again.")
    def get(self, request: Request, item_id: int) -> Response:
        item = selectors.review_item_for(user=request.user, item_id=item_id)  # the detail's access rule
        view = review_item_model_view(item=item, request=request)
        if view["pending"]:
            review_item_overlays_enqueue(items=[item])
        return Response(serializers.ModelViewSerializer(view).data)


class StatsApi(APIView):
    permission_classes = [IsReviewer]

    @extend_schema(operation_id="review_stats", responses=serializers.QueueStatsSerializer)
    def get(self, request: Request) -> Response:
        data = {**selectors.review_queue_stats(user=request.user),
                "progress": selectors.review_progress_for(user=request.user)}
        return Response(serializers.QueueStatsSerializer(data).data)


class AgreementApi(APIView):
    permission_classes = [IsReviewer]

    @extend_schema(operation_id="review_agreement", responses=serializers.AgreementSerializer,
                   description="Per-reviewer agreement with settled labels; Fleiss' kappa. Admins: every reviewer, "
                               "with gold accuracy. Reviewers: their own row, no gold figures, kappa over decided "
                               "rounds only.")
    def get(self, request: Request) -> Response:
        return Response(serializers.AgreementSerializer(selectors.review_agreement(user=request.user)).data)


class GoldApi(APIView):
    permission_classes = [IsAdminRole]

    @extend_schema(operation_id="review_gold_set", request=serializers.GoldInputSerializer,
                   responses={201: serializers.ReviewItemDetailSerializer, 400: ERROR, 404: ERROR, 409: ERROR},
                   description="Mark a face as gold with its known answer. Only labelled Training faces with a label "
                               "score (400 otherwise: never PublicTest, PrivateTest or an upload); the item takes its "
                               "place in the queue by that score, like any other. 409: its item is settled or "
                               "disputed (reopen it first).")
    def post(self, request: Request) -> Response:
        body = serializers.GoldInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        item = services.review_gold_set(face_id=body.validated_data["face"], label=body.validated_data["label"])
        response = _detail_response(request, item.pk)
        response.status_code = status.HTTP_201_CREATED
        return response


class ScoringRunsApi(APIView):
    permission_classes = [IsAdminRole]

    @extend_schema(operation_id="review_scoring_runs_list", responses=serializers.ScoringRunSerializer(many=True),
                   description="The latest 50 scoring runs, newest first, with their live progress.")
    def get(self, request: Request) -> Response:
        runs = selectors.scoring_run_list()[:50]
        return Response(serializers.ScoringRunSerializer(runs, many=True).data)

    @extend_schema(operation_id="review_scoring_runs_start", request=serializers.ScoringRunInputSerializer,
                   responses={202: serializers.ScoringRunSerializer},
                   description="Queue a scoring run (task review.score_labels on the bulk queue). An in-sample run "
                               "needs an active model version.")
    def post(self, request: Request) -> Response:
        body = serializers.ScoringRunInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        run = scoring_run_enqueue(created_by=request.user, **body.validated_data)
        return Response(serializers.ScoringRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class ScoringRunDetailApi(APIView):
    permission_classes = [IsAdminRole]

    @extend_schema(operation_id="review_scoring_runs_detail", responses={200: serializers.ScoringRunSerializer,
                                                                         404: ERROR})
    def get(self, request: Request, run_id: int) -> Response:
        return Response(serializers.ScoringRunSerializer(selectors.scoring_run_get(run_id=run_id)).data)


class ScoringRunCancelApi(APIView):
    permission_classes = [IsAdminRole]

    @extend_schema(operation_id="review_scoring_runs_cancel", request=None,
                   responses={200: serializers.ScoringRunSerializer, 404: ERROR, 409: ERROR},
                   description="A queued run is cancelled at once, a running one within a batch or two "
                               "(`cancel_requested` until then). Finished folds are kept for resuming.")
    def post(self, request: Request, run_id: int) -> Response:
        return Response(serializers.ScoringRunSerializer(scoring_run_cancel(run_id=run_id)).data)


class ScoringRunResumeApi(APIView):
    permission_classes = [IsAdminRole]

    @extend_schema(operation_id="review_scoring_runs_resume", request=None,
                   responses={202: serializers.ScoringRunSerializer, 404: ERROR, 409: ERROR},
                   description="Queue a cancelled or failed run again: it resumes from its finished folds.")
    def post(self, request: Request, run_id: int) -> Response:
        run = scoring_run_resume(run_id=run_id)
        return Response(serializers.ScoringRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class CSVRenderer(BaseRenderer):
    """Lets clients ask for ``Accept: text/csv``; the CSV itself is streamed by the view."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data if isinstance(data, (str, bytes)) else json.dumps(data)  # error bodies


def _export_dataset(request: Request) -> str:
    """The ``dataset`` query parameter of the dataset exports (a slug: it goes into the file name)."""
    query = serializers.KaggleExportQuerySerializer(data=request.query_params)
    query.is_valid(raise_exception=True)
    return query.validated_data["dataset"]


def _csv_response(rows, filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(rows, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class KaggleExportApi(APIView):
    permission_classes = [IsResearcher]
    renderer_classes = [JSONRenderer, CSVRenderer]
    throttle_classes = [ExportRateThrottle]  # a whole dataset per request

    @extend_schema(operation_id="review_export_kaggle", parameters=[serializers.KaggleExportQuerySerializer],
                   responses={(200, "text/csv"): OpenApiTypes.STR},
                   description="emotion,pixels,Usage with current labels; \"not a face\" rows dropped. The splits "
                               "you may see: Training and PublicTest; PrivateTest for admins when "
                               "GALLERY_SHOW_PRIVATE_TEST is on.")
    def get(self, request: Request) -> StreamingHttpResponse:
        dataset = _export_dataset(request)
        rows = kaggle_csv_rows(dataset=dataset, splits=face_splits_visible_to(request.user))
        return _csv_response(rows, f"{dataset}-corrected.csv")


class FerplusExportApi(APIView):
    permission_classes = [IsResearcher]
    renderer_classes = [JSONRenderer, CSVRenderer]
    throttle_classes = [ExportRateThrottle]  # a whole dataset per request

    @extend_schema(operation_id="review_export_ferplus", parameters=[serializers.KaggleExportQuerySerializer],
                   responses={(200, "text/csv"): OpenApiTypes.STR},
                   description="FER+ layout (fer2013new.csv columns) for the same rows, in the same order, as the "
                               "Kaggle export: each face's FER+ vote counts (zeros without them) plus the reviewers' "
                               "votes of its current round that you may see (blind review; admins: all), an emotion "
                               "in its column, not a face in NF. The pair imports back with import_fer2013 and "
                               "import_ferplus.")
    def get(self, request: Request) -> StreamingHttpResponse:
        dataset = _export_dataset(request)
        rows = ferplus_csv_rows(dataset=dataset, splits=face_splits_visible_to(request.user),
                                blind=selectors.blind_review_for(user=request.user))
        return _csv_response(rows, f"{dataset}-ferplus.csv")


class HistoryExportApi(APIView):
    permission_classes = [IsResearcher]
    renderer_classes = [JSONRenderer, CSVRenderer]
    throttle_classes = [ExportRateThrottle]  # a whole dataset per request

    @extend_schema(operation_id="review_export_history", responses={(200, "text/csv"): OpenApiTypes.STR},
                   description="One row per label change of the faces you may see: face, source row, old and new "
                               "label, votes, who, when. Votes are blind: empty for rounds you did not vote in "
                               "(admins: all).")
    def get(self, request: Request) -> StreamingHttpResponse:
        entries = selectors.label_history_for(user=request.user, faces=faces_visible_to(request.user))
        return _csv_response(history_csv_rows(entries), "label-history.csv")
