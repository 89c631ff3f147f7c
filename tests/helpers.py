"""Plain helpers the tests share; the shared fixtures are in tests/conftest.py, the real worker in tests/workers.py and
the API's error shape in tests/api_errors.py.

- ``api_client(user)``: an API client authenticated as ``user``.
- ``write_tiny_checkpoint(path, seed)``: a small untrained fer_vgg checkpoint, fast on CPU.
- ``wait_until(predicate, timeout=..., what=...)``: poll for what another process (a worker, a thread) does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The tiny network: a fer_vgg small enough to train and explain in a second on CPU.
TINY_ARCH = {"widths": (8, 16, 16, 32), "depths": (1, 1, 1, 1)}


def api_client(user=None, *, token: bool = False):
    """An API client authenticated as ``user`` (anonymous when ``None``): forced by default, with a real API token
    (``Authorization: Token ...``) when ``token`` is true."""
    from rest_framework.test import APIClient

    client = APIClient()
    if user is not None and token:
        from apps.accounts.services import api_token_create

        client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_create(user=user)[1]}")
    elif user is not None:
        client.force_authenticate(user)
    return client


def write_tiny_checkpoint(path: Path, seed: int = 1) -> Path:
    """Random weights of the tiny network (seeded): enough to produce probabilities and heatmaps. Its history gives a
    validation accuracy of ``0.25 + seed / 100``, so that two seeds are told apart on the pages."""
    import torch

    from ml.checkpoint import build_checkpoint, save_atomic
    from ml.models import create_model

    torch.manual_seed(seed)
    model = create_model("fer_vgg", **TINY_ARCH)
    history = [{"epoch": 1, "val_accuracy": 0.25 + seed / 100, "val_macro_f1": 0.125}]
    save_atomic(build_checkpoint(model, recipe={"name": "tiny", "n_train": 10}, epoch=1, history=history), path)
    return path


class WaitTimeout(AssertionError, TimeoutError):
    """A test's condition did not come true in time (a failed assertion, and a timeout for code that waits on
    services)."""


def wait_until(predicate: Callable[[], Any], *, timeout: float, what: str | Callable[[], str],
               interval: float = 0.2) -> Any:
    """``predicate()``'s first truthy value, polled every ``interval`` seconds; after ``timeout`` seconds the test fails
    with ``what`` (a callable is called then, so that the message can show the state the test waited on)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise WaitTimeout(f"not within {timeout:g} s: {what() if callable(what) else what}")
        time.sleep(interval)


def migrate_to(targets):
    """Migrate the test database to ``targets`` ([(app, migration)]); the apps registry of that state."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def migrate_to_latest():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    return migrate_to(MigrationExecutor(connection).loader.graph.leaf_nodes())
