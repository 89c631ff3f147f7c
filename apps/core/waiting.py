"""Waiting a bounded time for what a worker writes, by reading the database again: the one loop behind every
``?wait=`` (an upload's result, an on-demand heatmap). The web process never does the work itself; it only looks
again until the rows are there or the time is up, and then answers with what it has (a client asks again later)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# Results usually land within a second: read finely then (each read is a few cheap queries), coarsely after.
POLL_FAST_SECONDS, POLL_FAST_FOR_SECONDS, POLL_SLOW_SECONDS = 0.015, 3.0, 0.2


def wait_until(read: Callable[[], T], *, done: Callable[[T], bool], seconds: float) -> T:
    """``read()``, again and again for up to ``seconds`` (0 or less: once) until ``done`` holds for what it returned;
    the last read either way."""
    started = time.monotonic()
    deadline = started + max(0.0, seconds)
    while True:
        found = read()
        now = time.monotonic()
        if done(found) or now >= deadline:
            return found
        delay = POLL_FAST_SECONDS if now - started < POLL_FAST_FOR_SECONDS else POLL_SLOW_SECONDS
        time.sleep(min(delay, deadline - now))
