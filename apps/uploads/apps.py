from __future__ import annotations

from django.apps import AppConfig


class UploadsConfig(AppConfig):
    name = "apps.uploads"
    label = "uploads"
    verbose_name = "Uploads"

    def ready(self) -> None:
        from apps.inference.signals import prediction_chunk_finished

        prediction_chunk_finished.connect(_chunk_finished, dispatch_uid="uploads.chunk_finished")


def _chunk_finished(sender, face_ids, **kwargs) -> None:
    """A prediction chunk ended (done or failed): its uploads record the state that their results imply."""
    from .services import upload_status_record

    upload_status_record(face_ids=face_ids)
