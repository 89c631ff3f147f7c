"""One machine, nothing installed: SQLite and the filesystem broker under var/ unless the environment says otherwise."""

from __future__ import annotations

from .base import *  # noqa: F403
from .env import env_bool

# Off unless asked for (DEBUG=1): a debug page shows settings and code to whoever reaches the port.
DEBUG = env_bool("DEBUG", False)
