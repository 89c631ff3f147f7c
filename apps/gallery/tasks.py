"""Celery tasks (queue ``gpu``): thin wrappers over the gallery's services (imported inside the function: services
import these tasks at module level)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="gallery.faithfulness")
def faithfulness_task(version_id: int, methods: list[str], sample_size: int = 200, split: str = "PublicTest") -> dict:
    from apps.inference.models import ModelVersion

    from .services import faithfulness_compute

    version = ModelVersion.objects.get(pk=version_id)
    rows = faithfulness_compute(version=version, methods=methods, sample_size=sample_size, split=split)
    return {row.method: row.mean for row in rows}
