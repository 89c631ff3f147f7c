"""The shared cache on Redis (``CACHES`` when ``REDIS_URL`` is set): throttle counters, waiting-request slots and
"already queued" marks, seen alike by every gunicorn process and worker.

Two differences from Django's ``RedisCache``, both because the cache shares its Redis database with the broker:

- ``clear()`` deletes the cache's own keys (its ``KEY_PREFIX``) only. Django's flushes the database, which would
  empty the broker's queues too.
- Everything kept here is a hint, so Redis being away is not the request's failure: reads find nothing, writes report
  success (a throttle lets the request through, a mark lets the work be sent again: tasks are idempotent), and one
  warning line says so. The broker's own outage is handled where messages are sent (``apps.core.work``).
"""

from __future__ import annotations

import functools
import logging

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


def _or_when_away(answer):
    def decorate(method):
        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except RedisError as exc:
                logger.warning("cache unavailable, %s answers as if empty: %s: %s", method.__name__,
                               type(exc).__name__, exc)
                return answer(*args, **kwargs) if callable(answer) else answer
        return wrapper
    return decorate


class RedisCache(DjangoRedisCache):
    @_or_when_away(lambda key, default=None, version=None: default)
    def get(self, key, default=None, version=None):
        return super().get(key, default, version)

    @_or_when_away(True)
    def add(self, *args, **kwargs):
        return super().add(*args, **kwargs)

    @_or_when_away(None)
    def set(self, *args, **kwargs):
        return super().set(*args, **kwargs)

    @_or_when_away(False)
    def touch(self, *args, **kwargs):
        return super().touch(*args, **kwargs)

    @_or_when_away(False)
    def delete(self, *args, **kwargs):
        return super().delete(*args, **kwargs)

    @_or_when_away({})
    def get_many(self, *args, **kwargs):
        return super().get_many(*args, **kwargs)

    @_or_when_away(False)
    def has_key(self, *args, **kwargs):
        return super().has_key(*args, **kwargs)

    @_or_when_away([])
    def set_many(self, *args, **kwargs):
        return super().set_many(*args, **kwargs)

    @_or_when_away(None)
    def delete_many(self, *args, **kwargs):
        return super().delete_many(*args, **kwargs)

    @_or_when_away(None)
    def clear(self) -> None:
        client = self._cache.get_client(write=True)
        batch = []
        for key in client.scan_iter(match=f"{self.key_prefix}:*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                client.delete(*batch)
                batch = []
        if batch:
            client.delete(*batch)
