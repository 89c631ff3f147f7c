"""Celery tasks of the uploads app: thin, they take ids and call a service (imported inside the function: services
import these tasks at module level)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="uploads.record_status")
def upload_status_record_task(face_ids: list[int]) -> dict[str, int]:
    """Run after each prediction chunk of an upload request (on success and on final failure): record the state."""
    from .services import upload_status_record

    return {"changed": upload_status_record(face_ids=face_ids)}
