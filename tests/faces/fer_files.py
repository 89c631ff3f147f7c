"""Synthetic FER-2013 and FER+ files for importer tests."""

from __future__ import annotations

import gzip
from pathlib import Path

from apps.faces.labels import FERPLUS_COLUMNS

from .factories import random_pixels


def pixel_text(raw: bytes) -> str:
    return " ".join(str(b) for b in raw)


def fer_row(seed: int, label: int = 3, usage: str = "Training") -> list[str]:
    return [str(label), pixel_text(random_pixels(seed)), usage]


def write_fer(path: Path, rows: list[list[str]], *, gz: bool = False, header: str = "emotion,pixels,Usage") -> Path:
    text = header + "\n" + "".join(",".join(row) + "\n" for row in rows)
    if gz:
        with gzip.open(path, "wt", newline="") as handle:
            handle.write(text)
    else:
        path.write_text(text)
    return path


def write_ferplus(path: Path, rows: list[tuple[str, list[int | str]]]) -> Path:
    header = "Usage,Image name," + ",".join(FERPLUS_COLUMNS)
    lines = [header] + [f"{usage},fer{i:07d}.png," + ",".join(str(v) for v in votes) for i, (usage, votes) in
                        enumerate(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def stored_files(media_root: Path) -> list[Path]:
    return sorted(p for p in media_root.rglob("*") if p.is_file()) if media_root.exists() else []
