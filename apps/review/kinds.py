"""The review app's units of work (``apps.core.work``), registered in ``ReviewConfig.ready``."""

from __future__ import annotations

from apps.core.work import WorkKind

SCORING_RUN = WorkKind(name="scoring_run", label="label-scoring runs", model="review.ScoringRun",
                       task="review.score_labels", failed="failed")

KINDS = (SCORING_RUN,)
