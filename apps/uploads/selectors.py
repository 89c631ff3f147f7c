"""Reads for uploads: whose uploads a user may see, and each upload's prediction and heatmaps in a few queries."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db.models import QuerySet

from apps.accounts.roles import Role, user_has_role
from apps.core.errors import NotFound
from apps.inference.models import Explanation, Prediction, PredictionFailure
from apps.inference.selectors import model_version_active

from .models import Upload


@dataclass
class UploadResult:
    upload: Upload
    prediction: Prediction | None = None
    explanations: list[Explanation] = field(default_factory=list)  # of the prediction's version
    failure: PredictionFailure | None = None

    def state(self) -> tuple[str, str]:
        """(status, error) that the stored rows imply for this upload."""
        upload = self.upload
        if upload.face_id is None:
            return Upload.Status.NO_FACE, ""
        if self.prediction is not None:
            explained = {e.method for e in self.explanations if e.target_label == self.prediction.predicted_label}
            done = set(upload.methods) <= explained
            return (Upload.Status.DONE if done else Upload.Status.PROCESSING), ""
        if self.failure is not None:
            return Upload.Status.FAILED, self.failure.error
        return Upload.Status.QUEUED, ""

    @property
    def status(self) -> str:
        """The recorded status once finished, else what the stored rows imply now (reads never write it)."""
        return self.upload.status if self.upload.is_finished else self.state()[0]

    @property
    def error(self) -> str:
        return self.upload.error if self.upload.is_finished else self.state()[1]

    @property
    def is_finished(self) -> bool:
        return self.status in Upload.FINISHED

    @property
    def finished_at(self):
        if self.upload.finished_at is not None or not self.is_finished:
            return self.upload.finished_at
        stamps = [r.created_at for r in [self.failure, *self.explanations, self.prediction]
                  if r is not None and getattr(r, "created_at", None) is not None]
        return max(stamps) if stamps else None


def upload_list_for(*, user) -> QuerySet[Upload]:
    """Newest first; a user's own uploads, or everyone's for admins."""
    uploads = Upload.objects.select_related("face__pixels", "user").order_by("-created_at")
    return uploads if user_has_role(user, Role.ADMIN) else uploads.filter(user=user)


def upload_get_for(*, user, upload_id: uuid.UUID | str) -> Upload:
    """Upload ``upload_id`` if ``user`` may see it; ``NotFound`` otherwise, for someone else's upload too (its
    existence is not revealed) and for an id that is not a uuid."""
    try:
        pk = upload_id if isinstance(upload_id, uuid.UUID) else uuid.UUID(str(upload_id))
    except ValueError:
        raise NotFound(f"no upload {upload_id}") from None
    upload = upload_list_for(user=user).filter(pk=pk).first()
    if upload is None:
        raise NotFound(f"no upload {upload_id}")
    return upload


def upload_results(uploads: Sequence[Upload]) -> list[UploadResult]:
    """Prediction, heatmaps and failure of each upload, preferring the version active at upload time."""
    face_ids = {u.face_id for u in uploads if u.face_id is not None}
    if not face_ids:
        return [UploadResult(upload=u) for u in uploads]
    active = model_version_active()
    predictions: dict[tuple[int, int], Prediction] = {
        (p.face_id, p.model_version_id): p
        for p in Prediction.objects.filter(face_id__in=face_ids).select_related("model_version")
    }
    explanations: dict[tuple[int, int], list[Explanation]] = defaultdict(list)
    for explanation in Explanation.objects.filter(face_id__in=face_ids).order_by("method", "target_label"):
        explanations[(explanation.face_id, explanation.model_version_id)].append(explanation)
    failures: dict[int, PredictionFailure] = {}
    for failure in PredictionFailure.objects.filter(face_id__in=face_ids).order_by("created_at", "id"):
        failures[failure.face_id] = failure  # the latest wins
    results = []
    for upload in uploads:
        result = UploadResult(upload=upload)
        if upload.face_id is not None:
            versions = [v for v in (upload.model_version_id, active.pk if active else None) if v is not None]
            for version_id in versions:
                prediction = predictions.get((upload.face_id, version_id))
                if prediction is not None:
                    result.prediction = prediction
                    result.explanations = explanations[(upload.face_id, version_id)]
                    break
            failure = failures.get(upload.face_id)
            if failure is not None and failure.created_at >= upload.created_at:
                result.failure = failure
        results.append(result)
    return results
