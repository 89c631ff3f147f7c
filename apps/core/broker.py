"""Read-only looks at the Celery broker: which messages wait in a queue (Redis lists, or the filesystem transport's
folder). The status page shows them; the sweeper skips rows whose message is still waiting. Never raises for a
broker that is down: callers get ``BrokerUnreachable`` and decide."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

import redis
from django.conf import settings

REDIS_PRIORITY_SEPARATOR = "\x06\x16"  # kombu's Redis transport keeps priorities 3/6/9 in "<queue>\x06\x16<n>" lists


class BrokerUnreachable(Exception):
    """The broker did not answer (or its folder is missing)."""


@dataclass(frozen=True)
class WaitingMessage:
    task: str
    args: tuple
    task_id: str


def is_redis() -> bool:
    return settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://"))


def redis_client(timeout: float = 1.0) -> redis.Redis:
    return redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=timeout, socket_timeout=timeout)


def _folder() -> Path:
    return Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])


def _parse(raw: bytes | str) -> WaitingMessage | None:
    """One kombu message (JSON envelope, body base64 of ``[args, kwargs, embed]``); None when unreadable."""
    try:
        envelope = json.loads(raw)
        headers = envelope.get("headers") or {}
        body = envelope.get("body", "")
        if (envelope.get("properties") or {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        payload = json.loads(body)
        args = payload[0] if isinstance(payload, list) and payload else []
        return WaitingMessage(task=str(headers.get("task", "")), args=tuple(args), task_id=str(headers.get("id", "")))
    except (ValueError, TypeError, KeyError, IndexError):
        return None


def _redis_keys(queue: str) -> list[str]:
    return [queue, *(f"{queue}{REDIS_PRIORITY_SEPARATOR}{step}" for step in (3, 6, 9))]


def queue_lengths(queues: tuple[str, ...], *, timeout: float = 1.0) -> dict[str, int]:
    """Messages waiting per queue (not those a worker has reserved already)."""
    try:
        if is_redis():
            pipe = redis_client(timeout).pipeline()
            for queue in queues:
                for key in _redis_keys(queue):
                    pipe.llen(key)
            counts = pipe.execute()
            return {queue: sum(counts[i * 4:(i + 1) * 4]) for i, queue in enumerate(queues)}
        names = [p.name for p in _folder().iterdir()]
    except (redis.RedisError, OSError) as exc:
        raise BrokerUnreachable(f"{type(exc).__name__}: {exc}") from None
    return {queue: sum(name.endswith(f".{queue}.msg") for name in names) for queue in queues}


def queue_messages(queues: tuple[str, ...], *, timeout: float = 1.0, limit: int = 10_000) -> list[WaitingMessage]:
    """The messages waiting in ``queues`` (at most ``limit`` per queue), oldest first where the broker says."""
    messages: list[WaitingMessage] = []
    try:
        if is_redis():
            client = redis_client(timeout)
            for queue in queues:
                for key in _redis_keys(queue):
                    # kombu LPUSHes and BRPOPs: the oldest message is at the right end.
                    messages += [m for m in map(_parse, reversed(client.lrange(key, -limit, -1))) if m]
            return messages
        for queue in queues:
            paths = sorted(p for p in _folder().iterdir() if p.name.endswith(f".{queue}.msg"))[:limit]
            for path in paths:
                try:
                    message = _parse(path.read_bytes())
                except FileNotFoundError:  # consumed meanwhile
                    continue
                if message:
                    messages.append(message)
    except (redis.RedisError, OSError) as exc:
        raise BrokerUnreachable(f"{type(exc).__name__}: {exc}") from None
    return messages
