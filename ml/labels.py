"""The FER-2013 emotion classes, in the order of the Kaggle file's ``emotion`` column."""

from __future__ import annotations

CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES = len(CLASSES)
USAGES: tuple[str, ...] = ("Training", "PublicTest", "PrivateTest")


def class_index(name_or_index: str | int) -> int:
    """Map ``"happy"``, ``"3"`` or ``3`` to 3; raise ``ValueError`` with the valid names otherwise."""
    if isinstance(name_or_index, int) or str(name_or_index).isdigit():
        idx = int(name_or_index)
        if 0 <= idx < NUM_CLASSES:
            return idx
    elif str(name_or_index).lower() in CLASSES:
        return CLASSES.index(str(name_or_index).lower())
    raise ValueError(f"unknown emotion {name_or_index!r}; expected 0-{NUM_CLASSES - 1} or one of {', '.join(CLASSES)}")
