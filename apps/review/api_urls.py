from __future__ import annotations

from django.urls import path

from . import api, grid_api

urlpatterns = [
    path("items/next", api.NextItemsApi.as_view(), name="review-api-next"),
    path("items/<int:item_id>", api.ItemDetailApi.as_view(), name="review-api-item"),
    path("items/<int:item_id>/votes", api.VoteCastApi.as_view(), name="review-api-vote"),
    path("items/<int:item_id>/skip", api.SkipApi.as_view(), name="review-api-skip"),
    path("items/<int:item_id>/reopen", api.ReopenApi.as_view(), name="review-api-reopen"),
    path("items/<int:item_id>/settle", api.SettleApi.as_view(), name="review-api-settle"),
    path("items/<int:item_id>/model", api.ModelViewApi.as_view(), name="review-api-model"),
    path("votes/undo", api.VoteUndoApi.as_view(), name="review-api-undo"),
    path("stats", api.StatsApi.as_view(), name="review-api-stats"),
    path("grid/page", grid_api.GridPageApi.as_view(), name="review-api-grid-page"),
    path("grid/votes", grid_api.GridSubmitApi.as_view(), name="review-api-grid-votes"),
    path("agreement", api.AgreementApi.as_view(), name="review-api-agreement"),
    path("gold", api.GoldApi.as_view(), name="review-api-gold"),
    path("scoring-runs", api.ScoringRunsApi.as_view(), name="review-api-scoring-runs"),
    path("scoring-runs/<int:run_id>", api.ScoringRunDetailApi.as_view(), name="review-api-scoring-run"),
    path("scoring-runs/<int:run_id>/cancel", api.ScoringRunCancelApi.as_view(), name="review-api-scoring-run-cancel"),
    path("scoring-runs/<int:run_id>/resume", api.ScoringRunResumeApi.as_view(), name="review-api-scoring-run-resume"),
    path("export/kaggle.csv", api.KaggleExportApi.as_view(), name="review-api-export-kaggle"),
    path("export/ferplus.csv", api.FerplusExportApi.as_view(), name="review-api-export-ferplus"),
    path("export/history.csv", api.HistoryExportApi.as_view(), name="review-api-export-history"),
]
