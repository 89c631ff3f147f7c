"""The one wait-for-result loop (``apps.core.waiting.wait_until``) behind every ``?wait=``."""

from __future__ import annotations

import threading
import time

from apps.core.waiting import wait_until


def test_a_result_that_is_there_is_returned_after_one_read():
    reads = []
    assert wait_until(lambda: reads.append(1) or "done", done=lambda r: r == "done", seconds=5) == "done"
    assert len(reads) == 1


def test_no_wait_reads_once_and_returns_what_it_found():
    reads = []
    assert wait_until(lambda: reads.append(1) or None, done=lambda r: r is not None, seconds=0) is None
    assert wait_until(lambda: reads.append(1) or None, done=lambda r: r is not None, seconds=-3) is None
    assert len(reads) == 2


def test_it_returns_as_soon_as_the_result_lands():
    landed = threading.Event()
    threading.Timer(0.1, landed.set).start()
    started = time.monotonic()
    assert wait_until(landed.is_set, done=bool, seconds=10) is True
    assert time.monotonic() - started < 1.0  # polled finely, not after the whole 10 s


def test_it_gives_up_after_the_time_given_with_the_last_read():
    reads = []
    started = time.monotonic()
    assert wait_until(lambda: reads.append(1) or len(reads), done=lambda r: False, seconds=0.3) == len(reads)
    took = time.monotonic() - started
    assert 0.3 <= took < 1.0 and len(reads) > 2
