"""Pieces every importer shares: reports, bad rows, opening plain or gzip files, batching."""

from __future__ import annotations

import csv
import gzip
import io
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

MAX_BAD_ROWS_KEPT = 1000  # the report keeps the first ones and counts the rest (constant memory)

ProgressCallback = Callable[[int], None]


class ImportAborted(Exception):
    """A bad row under ``--strict``, or a file that cannot be imported at all; nothing was written."""


@dataclass(frozen=True)
class BadRow:
    where: str  # "line 12" or a relative file path
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass
class ImportReport:
    rows_read: int = 0
    created: int = 0
    already_present: int = 0
    duplicates_linked: int = 0
    pixels_stored: int = 0
    updated: int = 0
    unmatched: int = 0
    bad_count: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)

    def add_bad(self, bad: BadRow) -> None:
        self.bad_count += 1
        if len(self.bad_rows) < MAX_BAD_ROWS_KEPT:
            self.bad_rows.append(bad)


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


class _Progress(io.RawIOBase):
    """Wraps the raw file to report bytes read (the compressed bytes for gzip): progress without a line count."""

    def __init__(self, raw: io.BufferedReader, on_progress: ProgressCallback | None) -> None:
        self._raw = raw
        self._on_progress = on_progress

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        n = self._raw.readinto(buffer)
        if n and self._on_progress:
            self._on_progress(n)
        return n or 0


@contextmanager
def open_csv(path: str | os.PathLike[str], on_progress: ProgressCallback | None = None) -> Iterator[csv.reader]:
    """A csv reader over a plain or gzip file (detected by its magic bytes), streamed."""
    path = Path(path)
    if not path.is_file():
        raise ImportAborted(f"{path}: no such file")
    with open(path, "rb") as raw:
        is_gzip = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        stream: io.BufferedIOBase = io.BufferedReader(_Progress(raw, on_progress), buffer_size=1 << 20)
        if is_gzip:
            stream = gzip.GzipFile(fileobj=stream)
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
        try:
            yield csv.reader(text)
        except (UnicodeDecodeError, gzip.BadGzipFile, EOFError, csv.Error) as exc:
            raise ImportAborted(f"{path}: unreadable ({exc})") from None


def header_index(header: list[str] | None, required: Iterable[str], path: object) -> dict[str, int]:
    """Column positions by name (case-insensitive); abort naming the missing ones."""
    if not header:
        raise ImportAborted(f"{path}: empty file (no header row)")
    positions = {name.strip().lower(): i for i, name in enumerate(header)}
    missing = [name for name in required if name.lower() not in positions]
    if missing:
        raise ImportAborted(f"{path}: header lacks column(s) {', '.join(missing)}; found {', '.join(header)}")
    return {name: positions[name.lower()] for name in required}
