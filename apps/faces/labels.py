"""Emotion classes on the web side: the Django choices and FER+ vote columns, built on ``ml.labels``.

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

# 0 angry ... 6 neutral, in the order of ml.labels.CLASSES (the Kaggle ``emotion`` column).
Emotion = models.IntegerChoices("Emotion", [(name.upper(), (i, name)) for i, name in enumerate(CLASSES)])
