"""Query parameters every gallery page and API shares: the model version (default: active) and the CAM method."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from django.core.files.storage import default_storage

from apps.inference.models import ModelVersion
from apps.inference.services import DEFAULT_METHODS, UnknownCamMethod, cam_method_validate

from .selectors import GalleryParamError, model_version_for


@dataclass(frozen=True)
class GalleryParams:
    version: ModelVersion | None
    method: str


def gallery_params(query: Mapping[str, str]) -> GalleryParams:
    """``version`` (id; empty: the active one) and ``method`` (default gradcam); ``GalleryParamError`` if unknown."""
    version = model_version_for(query.get("version"))
    try:
        method = cam_method_validate(query.get("method") or DEFAULT_METHODS[0])
    except UnknownCamMethod as exc:
        raise GalleryParamError(str(exc)) from None
    return GalleryParams(version=version, method=method)


def media_url(name: str | None) -> str | None:
    """The public URL of a stored file (the overlays are served as files, never rendered per request)."""
    return default_storage.url(name) if name else None


def query_without(query: Mapping[str, str], *drop: str, **extra: object) -> str:
    """``query`` re-encoded without ``drop`` and empty values, with ``extra`` set (pagination and cell links)."""
    items = {k: v for k, v in query.items() if k not in drop and v not in ("", None)}
    items.update({k: v for k, v in extra.items() if v is not None})
    return urlencode(items)
