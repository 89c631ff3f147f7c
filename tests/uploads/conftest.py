from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest

from tests.helpers import api_client

# Throttle counters and the model cache are emptied before every test, and active_version is the shared one
# (tests/conftest.py: empty_cache, fresh_runtime, active_version).


@pytest.fixture
def client_for():
    """``client_for(user)``: an API client that sends ``user``'s API token, as a real client's uploads do."""
    return partial(api_client, token=True)


@pytest.fixture
def client(client_for, reviewer):
    """The reviewer's API client: what most upload tests send with (any logged-in user may upload)."""
    return client_for(reviewer)


def media_files(root: Path) -> list[Path]:
    return sorted(p for p in Path(root).rglob("*") if p.is_file()) if Path(root).exists() else []
