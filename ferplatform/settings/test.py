"""Test settings: PostgreSQL and Redis (CI starts both on this machine); media goes to a temp dir per test."""

from __future__ import annotations

import os

# Read before base so that base sees the test defaults.
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/ferplatform")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
# A scoring run run in a test's own process would otherwise send the overlay precompute to the suite's bulk queue;
# tests/review turns it on where it is the subject.
os.environ.setdefault("REVIEW_OVERLAY_PRECOMPUTE", "0")

from .base import *  # noqa: E402, F403

DEBUG = False
SECRET_KEY = "test-only-secret-key"  # noqa: S105
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast; tests only
FACES_IMPORT_BATCH_SIZE = 7  # small batches so tests cross batch boundaries
# django-axes refuses authenticate() calls without a request, which some tests make to check a stored password; the
# tests that exercise lockouts (tests/accounts) turn it back on with an autouse fixture (tests/accounts/conftest.py).
AXES_ENABLED = False
