"""The FER-2013 emotion classes, in the order of the Kaggle file's ``emotion`` column."""

from __future__ import annotations

CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES = len(CLASSES)
USAGES: tuple[str, ...] = ("Training", "PublicTest", "PrivateTest")


def class_index(name_or_index: str | int) -> int:
    """Map ``"happy"``, ``"Happy"``, ``" 3 "`` or ``3`` to 3; raise ``ValueError`` with the valid names otherwise
    (``True``, ``-1``, ``7`` and ``"3.0"`` included)."""
    if not isinstance(name_or_index, bool):
        text = str(name_or_index).strip().lower()
        if text.isdigit() and 0 <= int(text) < NUM_CLASSES:
            return int(text)
        if text in CLASSES:
            return CLASSES.index(text)
    raise ValueError(f"unknown emotion {name_or_index!r}; expected 0-{NUM_CLASSES - 1} or one of {', '.join(CLASSES)}")
