"""What a reviewer can answer: the seven emotions (0-6, as ``ml.labels.CLASSES``), "not a face" and "unsure"."""

from __future__ import annotations

from django.db import models

from ml.labels import CLASSES

NOT_A_FACE = len(CLASSES)
UNSURE = NOT_A_FACE + 1

Choice = models.IntegerChoices("Choice", [(name.upper(), (i, name)) for i, name in enumerate(CLASSES)]
                               + [("NOT_A_FACE", (NOT_A_FACE, "not a face")), ("UNSURE", (UNSURE, "unsure"))])


def choice_name(choice: int | None) -> str:
    return "" if choice is None else Choice(choice).label
