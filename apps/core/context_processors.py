"""What every page's template gets: the emotion classes, in the one order ``ml.labels`` defines (pages read them
from the JSON script block that ``base.html`` renders, never from literals in JS)."""

from __future__ import annotations

from django.http import HttpRequest

from ml.labels import CLASSES


def platform(request: HttpRequest) -> dict[str, object]:
    return {"emotion_classes": list(CLASSES)}
