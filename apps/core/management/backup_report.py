"""What ``manage.py backup`` and ``manage.py restore`` print: sizes for people and the manifest's row counts."""

from __future__ import annotations


def size_text(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def counts_lines(counts: dict[str, int], restored: dict[str, int] | None = None) -> list[str]:
    """One line per counted table; with ``restored``, the restored count beside the manifest's."""
    width = max(map(len, counts), default=0)
    if restored is None:
        return [f"  {key:<{width}}  {n:>9}" for key, n in counts.items()]
    return [f"  {key:<{width}}  {restored.get(key, 0):>9} restored / {n:>9} in the manifest"
            for key, n in counts.items()]
