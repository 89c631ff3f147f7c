from __future__ import annotations

from pathlib import Path

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from apps.inference import runtime
from apps.inference.services.registry import model_version_register

from .checkpoints import tiny_checkpoint_write


@pytest.fixture(autouse=True)
def fresh_throttles_and_models():
    """Throttle counters live in the (per-process) cache, models in the runtime cache: start each test clean."""
    cache.clear()
    runtime.clear()
    yield
    cache.clear()
    runtime.clear()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    return tiny_checkpoint_write(tmp_path_factory.mktemp("uploads-ckpt") / "tiny.pt")


@pytest.fixture
def active_version(db, tiny_checkpoint):
    return model_version_register(checkpoint_path=tiny_checkpoint, name="tiny-uploads", activate=True)


@pytest.fixture
def client_for():
    """An API client logged in (token auth) as ``user``."""

    def make(user) -> APIClient:
        from apps.accounts.services import api_token_create

        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_create(user=user)[1]}")
        return client

    return make


@pytest.fixture
def client(client_for, reviewer):
    """The reviewer's API client: what most upload tests send with (any logged-in user may upload)."""
    return client_for(reviewer)


def media_files(root: Path) -> list[Path]:
    return sorted(p for p in Path(root).rglob("*") if p.is_file()) if Path(root).exists() else []
