"""Reads for uploads: whose uploads a user may see, and each upload's faces with their prediction and heatmaps in a
few queries."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db.models import QuerySet

from apps.accounts.roles import Role, user_has_role
from apps.core.errors import ApplicationError, NotFound
from apps.inference.models import Explanation, Prediction, PredictionFailure
from apps.inference.selectors import model_version_active

from .models import Upload, UploadFace


@dataclass
class FaceResult:
    """One face of an upload with what is stored of its prediction, heatmaps (of the prediction's version) and
    failure."""

    upload_face: UploadFace
    methods: list[str]
    prediction: Prediction | None = None
    explanations: list[Explanation] = field(default_factory=list)
    failure: PredictionFailure | None = None

    def state(self) -> tuple[str, str]:
        """(status, error) that the stored rows imply for this face: queued, processing, done or failed."""
        if self.prediction is not None:
            explained = {e.method for e in self.explanations if e.target_label == self.prediction.predicted_label}
            done = set(self.methods) <= explained
            return (Upload.Status.DONE if done else Upload.Status.PROCESSING), ""
        if self.failure is not None:
            return Upload.Status.FAILED, self.failure.error
        return Upload.Status.QUEUED, ""


# How the faces' states add up to the upload's: the first of these that any face is in (done only when all are).
_STATE_ORDER = (Upload.Status.QUEUED, Upload.Status.PROCESSING, Upload.Status.FAILED, Upload.Status.DONE)


@dataclass
class UploadResult:
    upload: Upload
    faces: list[FaceResult] = field(default_factory=list)  # largest first; empty when no face was used

    @property
    def largest(self) -> FaceResult | None:
        return self.faces[0] if self.faces else None

    # The upload's own fields describe its largest face, as when an upload held one face.
    @property
    def prediction(self) -> Prediction | None:
        return self.largest.prediction if self.largest else None

    @property
    def explanations(self) -> list[Explanation]:
        return self.largest.explanations if self.largest else []

    def state(self) -> tuple[str, str]:
        """(status, error) that the stored rows imply for this upload: finished once every face is."""
        if not self.faces:
            return Upload.Status.NO_FACE, ""
        states = [face.state() for face in self.faces]
        for status in _STATE_ORDER:
            errors = [error for s, error in states if s == status]
            if errors:
                return status, next((e for e in errors if e), "")
        raise AssertionError(f"unknown face states {states}")

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
        rows = [r for face in self.faces for r in [face.failure, *face.explanations, face.prediction]]
        stamps = [r.created_at for r in rows if r is not None and getattr(r, "created_at", None) is not None]
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
    """Each upload's faces with their prediction, heatmaps and failure, preferring the version active at upload time;
    a few queries whatever the number of uploads and faces."""
    upload_faces: dict[uuid.UUID, list[UploadFace]] = defaultdict(list)
    for upload_face in UploadFace.objects.filter(upload__in=[u.pk for u in uploads]).select_related(
            "face__pixels").order_by("upload", "index"):
        upload_faces[upload_face.upload_id].append(upload_face)
    face_ids = {f.face_id for faces in upload_faces.values() for f in faces}
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
        versions = [v for v in (upload.model_version_id, active.pk if active else None) if v is not None]
        faces = []
        for upload_face in upload_faces[upload.pk]:
            face = FaceResult(upload_face=upload_face, methods=list(upload.methods))
            for version_id in versions:
                prediction = predictions.get((upload_face.face_id, version_id))
                if prediction is not None:
                    face.prediction = prediction
                    face.explanations = explanations[(upload_face.face_id, version_id)]
                    break
            failure = failures.get(upload_face.face_id)
            if failure is not None and failure.created_at >= upload.created_at:
                face.failure = failure
            faces.append(face)
        results.append(UploadResult(upload=upload, faces=faces))
    return results


def upload_face_get(*, upload: Upload, index: int) -> UploadFace:
    """Face ``index`` of ``upload`` (0 is the largest); ``NotFound`` when the upload has no such face."""
    upload_face = UploadFace.objects.filter(upload=upload, index=index).select_related("face").first()
    if upload_face is None:
        raise NotFound(f"upload {upload.pk} has no face {index}")
    return upload_face


class PhotoNotKept(ApplicationError):
    """The upload is older than the photos the platform keeps: its faces are there, its photo is not."""

    status, code = 410, "photo_not_kept"


def upload_photo_name(*, upload: Upload) -> str:
    """The storage name of the upload's display photo; ``PhotoNotKept`` for an upload made before photos were kept."""
    if not upload.photo:
        raise PhotoNotKept(f"upload {upload.pk} was made before photos were kept: only its face crops are stored")
    return upload.photo.name
