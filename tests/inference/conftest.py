"""The inference tests' checkpoints, active version and fresh model cache are the shared ones in tests/conftest.py."""

from __future__ import annotations

from tests.helpers import TINY_ARCH as TINY
from tests.helpers import write_tiny_checkpoint

# Imported from here by tests outside this folder (tests/faults, tests/review, tests/ferplatform): kept as names.
__all__ = ["TINY", "write_tiny_checkpoint"]
