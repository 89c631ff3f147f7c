"""The one parser of the gallery's query parameters, shared by every gallery page and API endpoint, so that a page and
its API answer the same input the same way: an unknown model version is a 404 (``UnknownModelVersion``); an unknown
CAM method, a hidden or unknown split, a bad ``by``, ``changed``, ``true`` or ``predicted`` is a 400
(``GalleryParamError``, or ``UnknownCamMethod``). Pages render these errors with the same status (see
``apps.core.middleware``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from django.core.files.storage import default_storage

from apps.core.errors import InvalidInput, NotFound
from apps.faces.models import Split
from apps.inference.models import ModelVersion
from apps.inference.selectors import model_version_active
from apps.inference.services.predictions import DEFAULT_METHODS, cam_layer_validate, cam_method_validate
from ml.labels import NUM_CLASSES

TRUE_VALUES, FALSE_VALUES = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
MAP_GROUPINGS = ("predicted", "true")


class GalleryParamError(InvalidInput):
    """A query parameter the gallery cannot use; the message names it and the choices."""

    code = "bad_parameter"


class UnknownModelVersion(NotFound):
    code = "unknown_model_version"


def model_version_param(value: str | int | None) -> ModelVersion | None:
    """The version named by ``value``, or the active one (None if none) when it is empty."""
    if value in (None, ""):
        return model_version_active()
    try:
        return ModelVersion.objects.get(pk=int(value))
    except (ValueError, TypeError, ModelVersion.DoesNotExist):
        raise UnknownModelVersion(f"unknown model version {value!r}") from None


def method_param(value: str | None) -> str:
    return cam_method_validate(value or DEFAULT_METHODS[0])


def split_param(value: str | None, *, splits: Sequence[str], default: str = "", name: str = "split") -> str:
    """One of ``splits`` (those the viewer may see), or ``default`` when empty."""
    if value in (None, ""):
        return default
    if value not in splits:
        raise GalleryParamError(f"{name}: unknown or hidden split {value!r}; choose one of {', '.join(splits)}",
                                errors=[{"field": name, "code": "invalid_choice", "detail": f"choose one of "
                                                                                           f"{', '.join(splits)}"}])
    return value


def bool_param(value: str | None, *, default: bool, name: str) -> bool:
    if value in (None, ""):
        return default
    text = str(value).strip().lower()
    if text in TRUE_VALUES:
        return True
    if text in FALSE_VALUES:
        return False
    raise GalleryParamError(f"{name}: expected one of {', '.join(TRUE_VALUES + FALSE_VALUES)}, not {value!r}")


def _class_param(value: str | None, *, name: str) -> int:
    try:
        label = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        label = -1
    if not 0 <= label < NUM_CLASSES:
        raise GalleryParamError(f"{name}: expected a class 0-{NUM_CLASSES - 1}, not {value!r}")
    return label


def layer_param(value: str | None, *, method: str) -> str:
    """``last`` when empty; a layer that does not suit ``method`` is a 400 (``CamLayerInvalid``)."""
    return cam_layer_validate(value or None, method=method)


@dataclass(frozen=True)
class GalleryParams:
    version: ModelVersion | None
    method: str
    layer: str = "last"


def gallery_params(query: Mapping[str, str]) -> GalleryParams:
    """``version`` (id; empty: the active one), ``method`` (default gradcam) and ``layer`` (default last; fine only
    for the methods that suit it)."""
    method = method_param(query.get("method"))
    return GalleryParams(version=model_version_param(query.get("version")), method=method,
                         layer=layer_param(query.get("layer"), method=method))


@dataclass(frozen=True)
class CompareParams:
    a: ModelVersion | None
    b: ModelVersion | None
    method: str
    split: str  # "" means every visible split
    changed_only: bool


def compare_params(query: Mapping[str, str], *, splits: Sequence[str], required: bool) -> CompareParams:
    """Versions ``a`` and ``b`` (required by the API; the page shows its pickers without them), ``method``,
    ``split`` (empty: every visible split) and ``changed`` (default true)."""
    missing = [key for key in ("a", "b") if not query.get(key)]
    if required and missing:
        raise GalleryParamError(f"{' and '.join(missing)}: a model version id is required",
                                errors=[{"field": key, "code": "required", "detail": "a model version id is required"}
                                        for key in missing])
    return CompareParams(
        a=model_version_param(query["a"]) if query.get("a") else None,
        b=model_version_param(query["b"]) if query.get("b") else None,
        method=method_param(query.get("method")),
        split=split_param(query.get("split"), splits=splits),
        changed_only=bool_param(query.get("changed"), default=True, name="changed"),
    )


@dataclass(frozen=True)
class ClassMapParams:
    method: str
    by: str
    split: str
    cell: tuple[int, int] | None  # (true, predicted): one confusion cell's mean map


def class_map_params(query: Mapping[str, str], *, splits: Sequence[str]) -> ClassMapParams:
    """``method``, ``by`` (predicted or true), ``split`` (default PublicTest) and optionally one cell
    (``true`` and ``predicted``, both 0-6)."""
    by = query.get("by") or MAP_GROUPINGS[0]
    if by not in MAP_GROUPINGS:
        raise GalleryParamError(f"by: choose {' or '.join(MAP_GROUPINGS)}, not {by!r}")
    cell = None
    if query.get("true") or query.get("predicted"):
        cell = (_class_param(query.get("true"), name="true"), _class_param(query.get("predicted"), name="predicted"))
    return ClassMapParams(method=method_param(query.get("method")), by=by, cell=cell,
                          split=split_param(query.get("split"), splits=splits, default=Split.PUBLIC_TEST.value))


def media_url(name: str | None) -> str | None:
    """The public URL of a stored file (the overlays are served as files, never rendered per request)."""
    return default_storage.url(name) if name else None


def query_without(query: Mapping[str, str], *drop: str, **extra: object) -> str:
    """``query`` re-encoded without ``drop`` and empty values, with ``extra`` set (pagination and cell links)."""
    items = {k: v for k, v in query.items() if k not in drop and v not in ("", None)}
    items.update({k: v for k, v in extra.items() if v is not None})
    return urlencode(items)
