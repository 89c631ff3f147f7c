"""Emotion classes and FER+ vote columns: the one place the web side defines them.

The order matches the Kaggle ``emotion`` column and ``ml/labels.py`` (kept in step by a test).
"""

from __future__ import annotations

from django.db import models

CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES = len(CLASSES)

# FER+ (fer2013new.csv) vote columns, in file order.
FERPLUS_COLUMNS: tuple[str, ...] = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "NF",
)


class Emotion(models.IntegerChoices):
    ANGRY = 0, "angry"
    DISGUST = 1, "disgust"
    FEAR = 2, "fear"
    HAPPY = 3, "happy"
    SAD = 4, "sad"
    SURPRISE = 5, "surprise"
    NEUTRAL = 6, "neutral"


def class_index(name_or_index: str | int) -> int:
    """Map ``"happy"``, ``"Happy"``, ``"3"`` or ``3`` to 3; raise ``ValueError`` otherwise."""
    text = str(name_or_index).strip().lower()
    if text.isdigit() and 0 <= int(text) < NUM_CLASSES:
        return int(text)
    if text in CLASSES:
        return CLASSES.index(text)
    raise ValueError(f"unknown emotion {name_or_index!r}; expected 0-{NUM_CLASSES - 1} or one of {', '.join(CLASSES)}")
