"""One machine, nothing installed: SQLite and the filesystem broker under var/ unless the environment says otherwise."""

from __future__ import annotations

from .base import *  # noqa: F403
from .env import env_bool

DEBUG = env_bool("DEBUG", True)
