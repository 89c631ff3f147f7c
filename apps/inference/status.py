"""What the status page shows: workers with their queues and device, queue lengths, the active model version,
database and broker health. Every probe is bounded by a short timeout and reports failure instead of raising."""

from __future__ import annotations

import time
from pathlib import Path

import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone

from ferplatform.celery import app as celery_app

from .selectors import inference_job_list, model_version_active
from .worker_control import COMMAND

QUEUES = ("interactive", "bulk")
REDIS_PRIORITY_SEPARATOR = "\x06\x16"  # kombu's Redis transport keeps priorities 3/6/9 in "<queue>\x06\x16<n>" lists


def _timed(probe, *args):
    started = time.monotonic()
    try:
        result = probe(*args)
    except Exception as exc:  # a probe must never break the page
        result = {"status": "down", "error": f"{type(exc).__name__}: {exc}"[:300]}
    result["ms"] = round(1000 * (time.monotonic() - started), 1)
    return result


def _database() -> dict[str, object]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"status": "up", "vendor": connection.vendor}


def _is_redis() -> bool:
    return settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://"))


def _redis_client(timeout: float) -> redis.Redis:
    return redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=timeout, socket_timeout=timeout)


def _broker(timeout: float) -> dict[str, object]:
    if _is_redis():
        _redis_client(timeout).ping()
        return {"status": "up", "transport": "redis"}
    folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
    if not folder.is_dir():
        return {"status": "down", "transport": "filesystem", "error": f"{folder} is missing"}
    return {"status": "up", "transport": "filesystem"}


def _queue_lengths(timeout: float) -> dict[str, int | None]:
    """Messages waiting per queue (not those a worker has reserved already)."""
    if _is_redis():
        client = _redis_client(timeout)
        pipe = client.pipeline()
        for queue in QUEUES:
            pipe.llen(queue)
            for step in (3, 6, 9):
                pipe.llen(f"{queue}{REDIS_PRIORITY_SEPARATOR}{step}")
        counts = pipe.execute()
        return {queue: sum(counts[i * 4:(i + 1) * 4]) for i, queue in enumerate(QUEUES)}
    folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
    names = [p.name for p in folder.iterdir()] if folder.is_dir() else []
    return {queue: sum(name.endswith(f".{queue}.msg") for name in names) for queue in QUEUES}


def _workers(timeout: float) -> list[dict[str, object]]:
    replies = celery_app.control.broadcast(COMMAND, reply=True, timeout=timeout)
    workers = []
    for reply in replies or []:
        for hostname, info in reply.items():
            if not isinstance(info, dict) or "error" in info:  # a worker running older code
                info = {"queues": None, "device": None, "error": (info or {}).get("error", "no answer")}
            workers.append({"name": hostname, **info})
    return sorted(workers, key=lambda w: w["name"])


def platform_status(*, timeout: float = 1.0) -> dict[str, object]:
    broker = _timed(_broker, timeout)
    if broker["status"] == "up":
        queues = _timed(lambda: {"status": "up", "lengths": _queue_lengths(timeout)})
        workers = _timed(lambda: {"status": "up", "workers": _workers(timeout)})
    else:
        queues = {"status": "down", "error": "broker is down", "lengths": {}}
        workers = {"status": "down", "error": "broker is down", "workers": []}
    database = _timed(_database)
    version, running = None, []
    if database["status"] == "up":
        version = model_version_active()
        running = list(inference_job_list().filter(status__in=["queued", "running"])[:10])
    return {
        "checked_at": timezone.now().isoformat(),
        "database": database,
        "broker": broker,
        "queues": queues.get("lengths", {}),
        "queues_error": queues.get("error", ""),
        "workers": workers.get("workers", []),
        "workers_error": workers.get("error", ""),
        "active_model": None if version is None else {
            "id": version.pk, "name": version.name, "arch": version.arch, "metrics": version.metrics,
            "activated_at": version.activated_at.isoformat() if version.activated_at else None,
        },
        "jobs": [{"id": j.pk, "dataset": j.dataset.name, "split": j.split, "methods": j.methods, "status": j.status,
                  "done": j.done, "total": j.total} for j in running],
    }
