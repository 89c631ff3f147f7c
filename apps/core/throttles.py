"""Per-user request budgets: scoped rates, and a bound on waiting requests a user has in flight.

Rates (``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``) are read per request, so settings overrides apply; the counters
live in the shared cache (``CACHES``: Redis, or the database), so a limit means what it says whatever the number of
gunicorn processes. A request over budget is a 429 with Retry-After in the one error shape.

- ``uploads`` and ``explanations``: POSTs that queue work for a worker.
- ``waits``: requests that ask to wait (``?wait=`` above 0), each of which may hold a gunicorn thread that long;
  and ``WaitSlotThrottle``: at most ``WAITS_MAX_CONCURRENT`` of them per user at once (a slot is a cache key that
  ``apps.core.middleware.WaitSlotMiddleware`` gives back when the response is done, and that expires on its own
  after the longest wait, should the process die first). Across all users at most ``WAITS_MAX_TOTAL`` wait at once,
  so that several accounts together cannot hold every thread either.
- ``exports``: whole-dataset downloads (CSV, ZIP), each of which reads every visible face. Pages use
  ``ThrottledPageMixin``.
- ``figures``: PNG figures drawn per request (confusion matrices, curves, class maps).
"""

from __future__ import annotations

import math

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

from .errors import ApplicationError

WAIT_SLOT_ATTRIBUTE = "_ferplatform_wait_slot"  # on the Django request: the slot keys to give back


def _ident(request: HttpRequest | Request) -> str:
    from .middleware import client_address

    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user-{user.pk}"
    return f"address-{client_address(getattr(request, '_request', request))}"


def asks_to_wait(request: HttpRequest | Request) -> bool:
    params = getattr(request, "query_params", None) or request.GET
    try:
        return float(params.get("wait") or 0) > 0
    except ValueError:  # the view's serializer answers 400 for it
        return False


class ScopedUserRateThrottle(SimpleRateThrottle):
    """Per user (per client address when anonymous) for ``scope``, on ``methods`` only (every method when None)."""

    scope = ""
    methods: tuple[str, ...] | None = None

    def __init__(self) -> None:  # the rate is read per request (``allow_request``), not once
        pass

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def applies(self, request) -> bool:
        return self.methods is None or request.method in self.methods

    def allow_request(self, request, view) -> bool:
        if not self.applies(request):
            return True
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": _ident(request)}


class UploadRateThrottle(ScopedUserRateThrottle):
    scope, methods = "uploads", ("POST",)


class ExplanationRateThrottle(ScopedUserRateThrottle):
    scope, methods = "explanations", ("POST",)


class ExportRateThrottle(ScopedUserRateThrottle):
    scope = "exports"


class WaitRateThrottle(ScopedUserRateThrottle):
    scope = "waits"

    def applies(self, request) -> bool:
        return asks_to_wait(request)


def _longest_wait() -> int:
    return math.ceil(max(settings.UPLOADS_MAX_WAIT_SECONDS, settings.INFERENCE_EXPLAIN_MAX_WAIT_SECONDS))


def _slot_take(owner: str, count: int, expires: int) -> str | None:
    """The key of a free slot among ``owner``'s ``count``, now taken; None when all are taken."""
    from django.core.cache import cache

    for slot in range(count):
        key = f"throttle_wait_slot_{owner}_{slot}"
        if cache.add(key, 1, timeout=expires):
            return key
    return None


class WaitSlotThrottle(BaseThrottle):
    """A waiting request takes one of its user's ``WAITS_MAX_CONCURRENT`` slots and one of the platform's
    ``WAITS_MAX_TOTAL``, or is refused."""

    def allow_request(self, request, view) -> bool:
        if not asks_to_wait(request):
            return True
        django_request = getattr(request, "_request", request)
        if getattr(django_request, WAIT_SLOT_ATTRIBUTE, None):
            return True  # DRF checks throttles once per request; this is only for safety
        from django.core.cache import cache

        expires = _longest_wait() + 30
        own = _slot_take(_ident(request), settings.WAITS_MAX_CONCURRENT, expires)
        if own is None:
            return False
        shared = _slot_take("all", settings.WAITS_MAX_TOTAL, expires)
        if shared is None:
            cache.delete(own)
            return False
        setattr(django_request, WAIT_SLOT_ATTRIBUTE, (own, shared))
        return True

    def wait(self) -> float:
        return 1.0


def wait_slot_release(request: HttpRequest) -> None:
    keys = getattr(request, WAIT_SLOT_ATTRIBUTE, None)
    if keys:
        from django.core.cache import cache

        cache.delete_many(list(keys))
        setattr(request, WAIT_SLOT_ATTRIBUTE, None)


class Throttled(ApplicationError):
    status, code = 429, "throttled"
    retry_after: int | None = None  # seconds, sent as Retry-After

    def __init__(self, detail: str, *, retry_after: int | None = None, **kwargs) -> None:
        super().__init__(detail, **kwargs)
        self.retry_after = retry_after


class ThrottledPageMixin:
    """A page or download (a plain Django view) under a scoped rate: ``throttle_scope``. Put it after the role check
    in the bases, so that only users who may download count."""

    throttle_scope = "exports"

    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        throttle = type("PageThrottle", (ScopedUserRateThrottle,), {"scope": self.throttle_scope})()
        if not throttle.allow_request(request, self):
            seconds = math.ceil(throttle.wait() or 1)
            raise Throttled(f"too many requests; try again in {seconds} s", retry_after=seconds)
        return super().dispatch(request, *args, **kwargs)
