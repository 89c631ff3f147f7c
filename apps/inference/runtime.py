"""Per-process model cache: a worker keeps the model loaded between tasks and reloads only when the version changes.

Keyed by (version id, checkpoint file name), so a re-registered file or a recycled id never serves stale weights.
Keeps at most ``CACHE_SIZE`` models: the active one plus one other (an on-demand heatmap for an older version must not
evict the model that serves every new upload).
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from django.core.files.storage import default_storage

from ml.checkpoint import LoadedCheckpoint, load_checkpoint
from ml.evaluate import pick_device

from .models import ModelVersion

CACHE_SIZE = 2

_lock = threading.Lock()
# CAM methods hook the shared model's target layer: two threads explaining at once would mix their activations.
cam_lock = threading.Lock()
_cache: OrderedDict[tuple[int, str], LoadedCheckpoint] = OrderedDict()
load_count = 0  # how many checkpoints this process has loaded (only tests read it, e.g. that the web loads none)


def device() -> torch.device:
    return pick_device()


@contextmanager
def local_checkpoint(name: str) -> Iterator[Path]:
    """A local path for a stored checkpoint: the file itself on local storage, a temp copy on remote storage."""
    try:
        yield Path(default_storage.path(name))
        return
    except NotImplementedError:
        pass
    with tempfile.NamedTemporaryFile(suffix=".pt") as tmp, default_storage.open(name, "rb") as src:
        shutil.copyfileobj(src, tmp)
        tmp.flush()
        yield Path(tmp.name)


def loaded(version: ModelVersion) -> LoadedCheckpoint:
    """The model of ``version`` on this process's device, loading it at most once per process."""
    global load_count
    key = (version.pk, version.checkpoint.name)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        with local_checkpoint(version.checkpoint.name) as path:
            checkpoint = load_checkpoint(path, device())
        _cache[key] = checkpoint
        load_count += 1
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
        return checkpoint


def clear() -> None:
    with _lock:
        _cache.clear()
