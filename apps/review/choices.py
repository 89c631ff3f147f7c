"""What a reviewer can answer: the seven emotions (0-6, as in ``apps.faces.labels``), "not a face" and "unsure"."""

from __future__ import annotations

from django.db import models

from apps.faces.labels import CLASSES

NOT_A_FACE = 7
UNSURE = 8


class Choice(models.IntegerChoices):
    ANGRY = 0, "angry"
    DISGUST = 1, "disgust"
    FEAR = 2, "fear"
    HAPPY = 3, "happy"
    SAD = 4, "sad"
    SURPRISE = 5, "surprise"
    NEUTRAL = 6, "neutral"
    NOT_A_FACE = NOT_A_FACE, "not a face"
    UNSURE = UNSURE, "unsure"


assert tuple(Choice.labels[: len(CLASSES)]) == CLASSES  # noqa: S101 - kept in step with faces.labels


def choice_name(choice: int | None) -> str:
    return "" if choice is None else Choice(choice).label
