"""Which stored media file a user may fetch: the face access rule (``apps.faces.selectors.faces_visible_to``)
applied to the file's owner row. Face PNGs belong to the faces that use them, heatmap overlays to their face;
checkpoints and anything else are never served over ``/media/``."""

from __future__ import annotations

import posixpath

from apps.faces.selectors import faces_visible_to

MEDIA_CONTENT_TYPE = "image/png"  # the only kind of file /media/ serves


def media_file_for(*, user, path: str) -> str | None:
    """The storage name behind ``/media/<path>`` if ``user`` may see it, else None."""
    name = posixpath.normpath(path)
    if name != path or name.startswith(("/", "..")) or not name.endswith(".png"):
        return None  # no traversal, no other kinds of file
    kind = name.split("/", 1)[0]
    faces = faces_visible_to(user)
    if kind == "faces":
        return name if faces.filter(pixels__png=name).exists() else None
    if kind == "explanations":
        return name if faces.filter(explanations__overlay=name).exists() else None
    return None  # models/ (checkpoints) and anything unknown: never
