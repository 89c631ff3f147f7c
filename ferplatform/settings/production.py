"""Production: refuses to start without SECRET_KEY; passes ``manage.py check --deploy``."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .env import env_bool, env_int, env_optional_str, env_str

_secret = env_optional_str("SECRET_KEY")
if not _secret:
    raise ImproperlyConfigured(
        "SECRET_KEY must be set in the environment for production settings (a long random value, e.g. from "
        "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`; `make prod` makes one at first start). "
        "For a run on this machine only, use `make run` (DJANGO_SETTINGS_MODULE=ferplatform.settings.local).")
SECRET_KEY = _secret

DEBUG = False
MEDIA_X_ACCEL_PREFIX = env_str("MEDIA_X_ACCEL_PREFIX", "/internal-media/")  # nginx: location /internal-media/
WHITENOISE_USE_FINDERS = env_bool("WHITENOISE_USE_FINDERS", False)  # collectstatic runs in the image

# TLS terminates at nginx, which overwrites X-Forwarded-Proto with the scheme it decided on (deploy/nginx.conf: its
# own, or a trusted load balancer's). The header counts only from an address in TRUSTED_PROXIES: from anyone else
# apps.core.middleware.TrustedProxyMiddleware drops it before SecurityMiddleware reads it.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 60 * 60 * 24 * 30, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
