"""Emotion classes on the web side: the Django choices, FER+ vote columns and their classes, built on ``ml.labels``.

``ml/labels.py`` holds the one class list (framework-free, so the apps import it from there): ``CLASSES``,
``NUM_CLASSES`` and ``class_index``. This module only adds what Django needs on top of it.
"""

from __future__ import annotations

from django.db import models

from ml.labels import CLASSES

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

# FER+ vote columns that are FER-2013 emotions, as (column index, class) pairs: the one mapping, used by training's
# soft labels and review's FER+ comparison. Contempt, unknown and NF ("not a face") have no FER-2013 class.
_FERPLUS_TO_CLASS = {"neutral": "neutral", "happiness": "happy", "surprise": "surprise", "sadness": "sad",
                     "anger": "angry", "fear": "fear", "disgust": "disgust"}  # in file order, but contempt's place
FERPLUS_INDEX: tuple[tuple[int, int], ...] = tuple(
    (FERPLUS_COLUMNS.index(column), CLASSES.index(name)) for column, name in _FERPLUS_TO_CLASS.items())

# 0 angry ... 6 neutral, in the order of ml.labels.CLASSES (the Kaggle ``emotion`` column).
Emotion = models.IntegerChoices("Emotion", [(name.upper(), (i, name)) for i, name in enumerate(CLASSES)])
