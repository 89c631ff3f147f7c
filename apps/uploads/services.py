"""Writes for uploads: validate every file, then store them all in one go and queue their faces' predictions.

Every face the detector finds in a photo is predicted on its own, up to ``UPLOADS_MAX_FACES`` (the largest first):
each is a ``FaceImage`` and an ``UploadFace`` row; the upload's own ``face`` fields describe the largest.

Nothing of a request is stored unless every file in it is valid: bounds, decoding and face detection run first,
in memory; then ``FaceWriter`` (the importers' writer too) writes the face PNGs (slow I/O, outside the transaction)
and one short transaction records the rows. If that transaction fails, the PNGs this request wrote are deleted again,
so no orphan media is left.

Memory: the headers of all files are read first, and their total pixels bounded (``UPLOADS_MAX_REQUEST_PIXELS``),
before any file is decoded; then the files are decoded one at a time, each released once its 48x48 crop is cut, so a
request never holds more than one full-size decode (a 40 MP photo is ~160 MB of pixels).
The crops kept are 48x48 (2.3 KB each), so even ``UPLOADS_MAX_FACES`` of them per file change nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.utils import timezone

from apps.core.errors import ApplicationError
from apps.core.files import storage_save_atomic
from apps.core.waiting import wait_until
from apps.faces.models import FACE_SIZE, FaceImage, Split
from apps.faces.services import FaceWriter, dataset_get_or_create
from apps.inference.selectors import model_version_active
from apps.inference.services.chunks import prediction_chunks_create
from apps.inference.services.predictions import (
    UnknownCamMethod,
    cam_methods_validate,
)
from ml.facedetect import FaceCrop, NoFaceFound, crop_faces

from .images import (
    ImageFacts,
    ImageHeader,
    ImageRejected,
    image_check_size,
    image_decode,
    image_display_copy,
    image_probe,
)
from .models import UPLOADS_DATASET, Upload, UploadFace
from .selectors import UploadResult, upload_results


@dataclass(frozen=True)
class FileProblem:
    index: int
    name: str
    code: str
    message: str
    status: int

    def as_dict(self) -> dict[str, object]:
        return {"field": f"images.{self.index}", "index": self.index, "file": self.name, "code": self.code,
                "detail": self.message}


class UploadInvalid(ApplicationError):
    """The request cannot be stored; ``problems`` names each bad file (empty for request-level problems)."""

    def __init__(self, message: str, *, code: str, problems: Sequence[FileProblem] = (), status: int = 400) -> None:
        super().__init__(message, code=code, status=status, errors=[p.as_dict() for p in problems])
        self.problems = list(problems)


@dataclass(frozen=True)
class _Checked:
    """One file that passed validation: its facts and its 48x48 crops, largest face first (none when no face was found
    and the policy rejects it); never the decoded pixels, which are released before the next file is decoded."""

    name: str
    size: int
    image: ImageFacts
    crops: list[FaceCrop]
    no_face: str
    photo: bytes  # the JPEG kept for display (image_display_copy), tens of KB


def no_face_policy_default(*, width: int, height: int) -> str:
    """Images already face-sized (48x48) are faces: use them whole. Others report that no face was found."""
    return Upload.NoFace.USE_WHOLE if (width, height) == (FACE_SIZE, FACE_SIZE) else Upload.NoFace.REJECT


def max_request_pixels() -> int:
    return settings.UPLOADS_MAX_REQUEST_PIXELS


def _file_name(index: int, file: UploadedFile) -> str:
    return (file.name or f"file {index + 1}")[:255]


def _file_bytes(file: UploadedFile) -> bytes:
    image_check_size(file.size or 0, max_bytes=settings.UPLOADS_MAX_BYTES)
    file.seek(0)
    data = file.read(settings.UPLOADS_MAX_BYTES + 1)
    image_check_size(len(data), max_bytes=settings.UPLOADS_MAX_BYTES)  # the declared size may be wrong
    return data


def _file_probe(file: UploadedFile) -> ImageHeader:
    """Size, format and pixel bounds of one file from its bytes and header; nothing is decoded."""
    return image_probe(_file_bytes(file), max_pixels=settings.UPLOADS_MAX_PIXELS)


def _file_check(index: int, file: UploadedFile, no_face: str | None) -> _Checked:
    """Decode one file, cut its faces and let the decoded pixels go: only the crops and the facts outlive this call."""
    data = _file_bytes(file)
    decoded = image_decode(data, max_pixels=settings.UPLOADS_MAX_PIXELS)
    facts = decoded.facts
    policy = no_face or no_face_policy_default(width=facts.width, height=facts.height)
    try:
        try:
            crops = crop_faces(decoded.image, size=FACE_SIZE, max_faces=settings.UPLOADS_MAX_FACES,
                               use_whole_if_none=policy == Upload.NoFace.USE_WHOLE)
        except NoFaceFound:
            crops = []
        photo = image_display_copy(decoded.image)
    except (ValueError, OSError) as exc:  # e.g. an EXIF block Pillow cannot apply
        raise ImageRejected("corrupt", f"the image could not be converted to grayscale ({exc})") from None
    finally:
        decoded.image.close()  # frees the pixels now, even if a traceback or cycle still refers to the image
    return _Checked(name=_file_name(index, file), size=len(data), image=facts, crops=crops, no_face=policy,
                    photo=photo)


def _request_pixels_check(headers: Sequence[ImageHeader]) -> None:
    total, limit = sum(h.pixels for h in headers), max_request_pixels()
    if total > limit:
        raise UploadInvalid(
            f"the {len(headers)} images of this request total {total:,} pixels; the limit per request is "
            f"{limit:,} pixels: send fewer or smaller images (or several requests); nothing was stored",
            code="request_too_large", status=413)


def upload_files_check(*, files: Sequence[UploadedFile], no_face: str | None) -> list[_Checked]:
    """Validate every file; ``UploadInvalid`` lists all the bad ones (not only the first).

    Two passes: every header first (bounds per file and the request's total pixels, nothing decoded), then a full
    decode of each file in turn, so that only one decoded image is alive at a time.
    """
    if not files:
        raise UploadInvalid("no image in the request: send one or more files in the multipart field 'images' "
                            "(or 'image')", code="no_files")
    if len(files) > settings.UPLOADS_MAX_FILES:
        raise UploadInvalid(f"{len(files)} files in one request; the limit is {settings.UPLOADS_MAX_FILES}",
                            code="too_many_files")
    headers: dict[int, ImageHeader] = {}
    problems: dict[int, FileProblem] = {}
    for index, file in enumerate(files):
        try:
            headers[index] = _file_probe(file)
        except ImageRejected as exc:
            problems[index] = FileProblem(index, file.name or "", exc.code, exc.message, exc.status)
    _request_pixels_check(list(headers.values()))
    checked = []
    for index in headers:
        try:
            checked.append(_file_check(index, files[index], no_face))
        except ImageRejected as exc:
            problems[index] = FileProblem(index, files[index].name or "", exc.code, exc.message, exc.status)
    if problems:
        _problems_raise([problems[i] for i in sorted(problems)], total=len(files))
    return checked


def _problems_raise(problems: list[FileProblem], *, total: int) -> None:
    statuses = {p.status for p in problems}
    first = problems[0]
    summary = (f"{first.name or 'file ' + str(first.index + 1)}: {first.message}" if len(problems) == 1
               else f"{len(problems)} of {total} files were refused; nothing was stored")
    raise UploadInvalid(summary, code=first.code if len(problems) == 1 else "invalid_files", problems=problems,
                        status=statuses.pop() if len(statuses) == 1 else 400)


def upload_create(*, user, files: Sequence[UploadedFile], no_face: str | None = None,
                  methods: list[str] | None = None) -> list[Upload]:
    """Validate ``files`` (all or nothing), store the crop of each face they show and queue their prediction and
    heatmaps.

    ``no_face``: ``use_whole`` or ``reject``; None picks per image (``no_face_policy_default``).
    ``methods``: CAM method names (``UploadInvalid`` for an unknown one); None means the default (GradCAM).
    """
    if no_face not in (None, *Upload.NoFace.values):
        raise UploadInvalid(f"no_face must be one of {', '.join(Upload.NoFace.values)}, not {no_face!r}",
                            code="bad_no_face")
    try:
        methods = cam_methods_validate(methods)
    except UnknownCamMethod as exc:
        raise UploadInvalid(str(exc), code="unknown_method") from None
    checked = upload_files_check(files=files, no_face=no_face)
    version = model_version_active()
    crops = [crop for check in checked for crop in check.crops]
    # The photos and face PNGs are written first, outside the transaction; they are deleted again if the rows do not
    # commit.
    ids = [uuid.uuid4() for _ in checked]
    photos = _photos_store(checked, ids)
    try:
        uploads = _uploads_record(user=user, checked=checked, ids=ids, photos=photos, crops=crops, methods=methods,
                                  version=version)
    except BaseException:
        for name in photos:
            default_storage.delete(name)
        raise
    return uploads


def _photos_store(checked: Sequence[_Checked], ids: Sequence[uuid.UUID]) -> list[str]:
    names: list[str] = []
    try:
        for check, upload_id in zip(checked, ids, strict=True):
            names.append(storage_save_atomic(photo_path(upload_id), check.photo, what="uploaded photos"))
    except BaseException:
        for name in names:
            default_storage.delete(name)
        raise
    return names


def photo_path(upload_id: uuid.UUID) -> str:
    """Where an upload's display photo is stored: named by the upload's uuid, never by the client's file name."""
    return f"uploads/{upload_id}.jpg"


def _uploads_record(*, user, checked: Sequence[_Checked], ids: Sequence[uuid.UUID], photos: Sequence[str],
                    crops: Sequence[FaceCrop], methods: list[str], version) -> list[Upload]:
    with FaceWriter().recording([crop.pixels.tobytes() for crop in crops]) as pngs:
        dataset = dataset_get_or_create(name=UPLOADS_DATASET)
        shas = iter(pngs.shas)
        uploads, upload_faces = [], []
        for check, upload_id, photo in zip(checked, ids, photos, strict=True):
            faces = [FaceImage.objects.create(dataset=dataset, pixels_id=next(shas), split=Split.UPLOAD,
                                              source_name="") for _ in check.crops]
            upload = _upload_record(user=user, check=check, face=faces[0] if faces else None, methods=methods,
                                    version=version, upload_id=upload_id, photo=photo)
            upload_faces += UploadFace.objects.bulk_create([
                UploadFace(upload=upload, index=index, face=face, box=_box_json(crop), crop_box=list(crop.crop_box))
                for index, (face, crop) in enumerate(zip(faces, check.crops, strict=True))])
            uploads.append(upload)
        if upload_faces:
            # Rows of work, sent once this transaction commits (a broker that is down leaves them queued for the
            # sweeper and never fails this request); each chunk records its uploads' state when it ends.
            for chunk in prediction_chunks_create(face_ids=[f.face_id for f in upload_faces], methods=methods):
                UploadFace.objects.filter(face_id__in=chunk.face_ids, pk__in=[f.pk for f in upload_faces]).update(
                    chunk=chunk)
                Upload.objects.filter(face_id__in=chunk.face_ids, pk__in=[u.pk for u in uploads]).update(chunk=chunk)
    return uploads


def _box_json(crop: FaceCrop) -> dict[str, int] | None:
    box = crop.box
    return {"x": box.x, "y": box.y, "w": box.w, "h": box.h} if box is not None else None


def _upload_record(*, user, check: _Checked, face: FaceImage | None, methods: list[str], version,
                   upload_id: uuid.UUID, photo: str) -> Upload:
    """The upload row; its face fields describe the largest face (the first crop)."""
    crop = check.crops[0] if check.crops else None
    if face is None:
        status, finished = Upload.Status.NO_FACE, timezone.now()
    else:
        status, finished = Upload.Status.QUEUED, None
    return Upload.objects.create(
        id=upload_id,
        user=user,
        photo=photo,
        original_name=check.name,
        content_type=check.image.content_type,
        size=check.size,
        width=check.image.width,
        height=check.image.height,
        status=status,
        finished_at=finished,
        face=face,
        face_found=crop is not None and crop.found,
        face_box=_box_json(crop) if crop is not None else None,
        crop_box=list(crop.crop_box) if crop is not None else None,
        no_face=check.no_face,
        methods=list(methods or []),
        model_version=version,
    )


def upload_status_record(*, face_ids: Sequence[int]) -> int:
    """Record on the unfinished uploads of ``face_ids`` the state their stored prediction, heatmaps or failure
    imply (the worker calls this after each prediction chunk; reads derive the same state and never write).

    A conditional UPDATE on unfinished rows only, so a late or repeated call never moves an upload backwards.
    """
    uploads = list(Upload.objects.filter(faces__face_id__in=list(face_ids), status__in=[
        Upload.Status.QUEUED, Upload.Status.PROCESSING]).distinct())
    changed = 0
    for result in upload_results(uploads):
        status, error = result.state()
        if status == result.upload.status:
            continue
        changes: dict[str, object] = {"status": status, "error": error}
        if status in Upload.FINISHED:
            changes["finished_at"] = timezone.now()
        if result.prediction is not None:
            changes["model_version_id"] = result.prediction.model_version_id
        changed += Upload.objects.filter(pk=result.upload.pk, status__in=[Upload.Status.QUEUED,
                                                                          Upload.Status.PROCESSING]).update(**changes)
    return changed


def upload_results_wait(*, uploads: Sequence[Upload], timeout: float) -> list[UploadResult]:
    """The uploads' results, polling the database for up to ``timeout`` seconds until every one is finished."""
    return wait_until(lambda: upload_results(uploads), done=lambda results: all(r.is_finished for r in results),
                      seconds=timeout)

