"""Settings shared by every environment; everything that varies comes from the environment (docs/settings.md)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

from .env import (
    env_bool,
    env_database,
    env_int,
    env_list,
    env_networks,
    env_optional_str,
    env_path,
    env_redis_url,
    env_str,
)


def _throttle_rate(name: str, default: str) -> str:
    """A DRF throttle rate such as ``60/min`` (number / s, m, h or d, DRF reads the first letter)."""
    value = env_str(name, default)
    if not re.fullmatch(r"[1-9][0-9]*/(s|sec|second|m|min|minute|h|hour|d|day)", value):
        raise ImproperlyConfigured(f"Environment variable {name}={value!r} is malformed: expected e.g. 60/min.")
    return value


BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = env_path("FERPLATFORM_VAR_DIR", Path("var"), base=BASE_DIR)

# Overridden by local/test; production.py requires it from the environment.
SECRET_KEY = env_optional_str("SECRET_KEY") or "insecure-local-only-key-do-not-use-in-production"
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# Addresses (or networks) of the reverse proxy: only requests from these may carry X-Forwarded-Proto/-For/-Host.
# Loopback by default (make prod: nginx on this machine); docker-compose sets its private network.
TRUSTED_PROXIES = env_networks("TRUSTED_PROXIES", ["127.0.0.1/32", "::1/128"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",  # API tokens: hashed at rest, expiring, one row per token (REST_KNOX below)
    "axes",  # failed-login lockouts (AXES_* below)
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "apps.core",
    "apps.accounts",
    "apps.faces",
    "apps.inference",
    "apps.uploads",
    "apps.review",
    "apps.training",
    "apps.gallery",
    "apps.datamap",
]

MIDDLEWARE = [
    "apps.core.middleware.TrustedProxyMiddleware",  # first: X-Forwarded-* only from TRUSTED_PROXIES
    "apps.core.middleware.ContentSecurityPolicyMiddleware",  # on every response, static files and errors included
    "apps.core.middleware.WaitSlotMiddleware",  # gives back a ?wait= request's slot (apps/core/throttles.py)
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "apps.core.middleware.ApplicationErrorMiddleware",  # pages render service errors with their 4xx status
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks: turns a locked-out login page into its 429 page
]

# Scripts and styles from this site only: no template has an inline script or <style> (data goes in JSON blocks and
# data- attributes). Two gallery templates draw bars and matrix cells with style attributes (computed widths and
# colours): style-src-attr allows those attributes, which cannot run code. Swagger UI gets its setup script from a
# URL too (SpectacularSwaggerSplitView) and its icons as data: images.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "style-src-attr 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

# django-axes first: it refuses a locked-out username or client before ModelBackend checks the password.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "ferplatform.urls"
WSGI_APPLICATION = "ferplatform.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.core.context_processors.platform",
            ],
        },
    },
]

DATABASES = {"default": env_database("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}", base=BASE_DIR)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Static files: whitenoise serves them from the web process (nginx does in docker-compose).
STATIC_URL = "/static/"
STATIC_ROOT = env_path("STATIC_ROOT", VAR_DIR / "static", base=BASE_DIR)
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on every start when it is missing
# Serve straight from static/ and the apps, so runs work before (or without) collectstatic; production turns it off.
WHITENOISE_USE_FINDERS = env_bool("WHITENOISE_USE_FINDERS", True)
MEDIA_URL = "/media/"
MEDIA_ROOT = env_path("MEDIA_ROOT", VAR_DIR / "media", base=BASE_DIR)
# Every /media/ request goes through Django's access check (apps.core.views.media_serve). Empty: Django streams the
# file itself (local runs). A path prefix (production: /internal-media/): Django answers with X-Accel-Redirect to it
# and nginx serves the file from an `internal` location, so media is never reachable without the check.
MEDIA_X_ACCEL_PREFIX = env_str("MEDIA_X_ACCEL_PREFIX", "")
STORAGES = {
    # Media goes through Django's storage API only; swap the backend here for S3-compatible storage.
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

REST_FRAMEWORK = {
    # Token first: DRF answers missing or bad credentials with the first class's challenge, 401 + WWW-Authenticate:
    # Token (session auth has none, so it would be 403). Session auth stays for the pages' scripts.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "knox.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON bounded in size (DATA_UPLOAD_MAX_MEMORY_SIZE: 413) and nesting (400) before it is decoded.
    "DEFAULT_PARSER_CLASSES": [
        "apps.core.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "apps.core.schema.ErrorAwareAutoSchema",
    # One error shape for every 4xx (apps/core/errors.py); the schema declares it (apps/core/schema.py).
    "EXCEPTION_HANDLER": "apps.core.errors.api_exception_handler",
    # Scoped per-user rates (apps/core/throttles.py), counted in the shared cache (CACHES below).
    "DEFAULT_THROTTLE_RATES": {
        "uploads": _throttle_rate("UPLOADS_THROTTLE_RATE", "60/min"),
        "explanations": _throttle_rate("EXPLANATIONS_THROTTLE_RATE", "120/min"),
        "waits": _throttle_rate("WAITS_THROTTLE_RATE", "60/min"),  # requests with ?wait= (each may hold a thread)
        "exports": _throttle_rate("EXPORTS_THROTTLE_RATE", "30/hour"),  # CSV and ZIP downloads of whole datasets
        "figures": _throttle_rate("FIGURES_THROTTLE_RATE", "60/min"),  # PNG figures drawn per request
    },
}
# API tokens (django-rest-knox): only a SHA-512 digest is stored; each token expires and can be revoked on its own
# (apps/accounts/api.py); a password change revokes them all (apps/accounts/signals.py).
REST_KNOX = {
    "TOKEN_TTL": timedelta(hours=env_int("API_TOKEN_TTL_HOURS", 24, minimum=1)),
    "AUTH_HEADER_PREFIX": "Token",  # the header clients already send: Authorization: Token <token>
}

# Failed logins (django-axes), counted on the login form, the admin login and POST /api/auth/token/ alike.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1))  # counted from the last failure
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # either one reaching the limit locks: an account, or a client
# Left False: a success would clear every attempt from that address, the ones against other usernames included.
AXES_RESET_ON_SUCCESS = False
AXES_HTTP_RESPONSE_CODE = 429
AXES_LOCKOUT_CALLABLE = "apps.accounts.views.login_locked_out"  # the pages' 429 page; the API raises LoginLocked
# The client address for per-IP counts (apps.core.middleware.client_address): the last X-Forwarded-For entry, which
# deploy/nginx.conf appends (the address nginx saw), only from TRUSTED_PROXIES; entries a client wrote are never read.
# Behind one more proxy that appends (a TLS load balancer), LOGIN_PROXY_COUNT=1 takes the entry before nginx's.
AXES_CLIENT_IP_CALLABLE = "apps.core.middleware.client_address"
LOGIN_PROXY_COUNT = env_int("LOGIN_PROXY_COUNT", 0, minimum=0)

SPECTACULAR_SETTINGS = {
    "TITLE": "ferplatform API",
    "DESCRIPTION": "Facial-expression data: faces, predictions, explanations, review.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # One name per shared choice set, so the schema (and `check --deploy`) has no W001 naming warnings.
    "ENUM_NAME_OVERRIDES": {
        "EmotionEnum": "apps.faces.labels.Emotion",
        "ReviewChoiceEnum": "apps.review.choices.Choice",
        "ModelVersionStatusEnum": "apps.inference.models.ModelVersion.Status",
        "ScoringRunStatusEnum": "apps.review.models.ScoringRun.Status",
        "ScoringMethodEnum": "apps.review.models.ScoringRun.Method",
        "CamMethodEnum": "apps.inference.services.predictions.CAM_METHODS",
        "CamLayerEnum": "apps.inference.models.CamLayer",
    },
}

# Celery: Redis when REDIS_URL is set, else kombu's filesystem transport under var/ (one machine, no services).
REDIS_URL = env_redis_url("REDIS_URL")
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {}
else:
    _BROKER_DIR = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "results", "control"):
        (_BROKER_DIR / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    # Producer and consumer share one folder: they are the same app on one machine.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_BROKER_DIR / "queue"),
        "data_folder_out": str(_BROKER_DIR / "queue"),
        "processed_folder": str(_BROKER_DIR / "processed"),
        "control_folder": str(_BROKER_DIR / "control"),  # exchange tables; kombu's default is ./control
        "store_processed": False,
    }
    CELERY_RESULT_BACKEND = f"file://{_BROKER_DIR / 'results'}"
# Three queues, one worker process each (``make run``, ``make prod``, docker-compose): interactive work never waits
# behind bulk work, and the platform's chores (sweeper, periodic checks) never wait behind either (apps.core.work).
CELERY_TASK_DEFAULT_QUEUE = "interactive"
CELERY_TASK_QUEUES = tuple(Queue(name, Exchange(name, type="direct"), routing_key=name)
                           for name in ("interactive", "bulk", "chores"))
CELERY_TASK_DEFAULT_EXCHANGE = "interactive"
CELERY_TASK_DEFAULT_ROUTING_KEY = "interactive"
# Each task declares its queue (a job's kind in apps/*, beat's and hint tasks in their decorator); this table only
# overrides, e.g. {"training.run": {"queue": "gpu"}} for a dedicated worker. apps.core.work reads it at send time.
CELERY_TASK_ROUTES: dict[str, dict[str, str]] = {}
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# At least once: a message is acknowledged after its task ran, and given back when the worker process dies
# (SIGKILL, OOM, the hard time limit). Tasks are idempotent: each claims its database row with a conditional UPDATE.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 6 * 3600, minimum=1)
# Redis hands an unacknowledged message to another worker after visibility_timeout: longer than any task may run,
# so a long training run is never delivered twice while it trains. Lost work is found by the sweeper instead.
CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] = CELERY_TASK_TIME_LIMIT + 3600
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None  # workers wait for a broker that is down, however long
CELERY_BROKER_CONNECTION_TIMEOUT = 2  # s; a request that sends a task never hangs on a dead broker for long
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE

# The cache every process shares: throttle counters, waiting-request slots, "already queued" marks. Redis when it runs
# (the broker's database, under a key prefix of its own; ferplatform.cache never flushes the broker's keys), else a
# database table (`manage.py createcachetable`, which make run, make prod and docker-compose run after migrate).
if REDIS_URL:
    CACHES = {"default": {
        "BACKEND": "ferplatform.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "ferplatform-cache",
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},  # a hint is not worth a hung request
    }}
else:
    CACHES = {"default": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "ferplatform_cache",
        "OPTIONS": {"MAX_ENTRIES": 100_000},  # Django's 300 would cull live throttle counters
    }}
# Waiting requests (?wait=) one user may have in flight at once; more are refused with 429 at once, so that a few
# users cannot hold every gunicorn thread (GUNICORN_WORKERS x GUNICORN_THREADS) with waits.
WAITS_MAX_CONCURRENT = env_int("WAITS_MAX_CONCURRENT", 2, minimum=1)
# ... and all users together: the default leaves half of make prod's 8 threads (4 workers x 2) for everything else.
WAITS_MAX_TOTAL = env_int("WAITS_MAX_TOTAL", 4, minimum=1)

# Units of work (apps/core/work.py): heartbeats from running tasks, and the sweeper that beat runs.
WORK_HEARTBEAT_SECONDS = env_int("WORK_HEARTBEAT_SECONDS", 15, minimum=1)
WORK_HEARTBEAT_TIMEOUT = env_int("WORK_HEARTBEAT_TIMEOUT", 120, minimum=2)  # s without a heartbeat: the worker is lost
WORK_RESEND_AFTER = env_int("WORK_RESEND_AFTER", 60, minimum=1)  # s queued with no message in the broker: send again

# Uploads (apps/uploads): limits checked in the service before anything is stored.
UPLOADS_MAX_BYTES = env_int("UPLOADS_MAX_BYTES", 10 * 1024 * 1024, minimum=1)  # per file
UPLOADS_MAX_PIXELS = env_int("UPLOADS_MAX_PIXELS", 40_000_000, minimum=1)  # width x height; Pillow's own cap is 89 M
UPLOADS_MAX_FILES = env_int("UPLOADS_MAX_FILES", 20, minimum=1)  # per request
UPLOADS_MAX_REQUEST_PIXELS = env_int("UPLOADS_MAX_REQUEST_PIXELS", 200_000_000, minimum=1)  # all files of one request
UPLOADS_MAX_WAIT_SECONDS = env_int("UPLOADS_MAX_WAIT_SECONDS", 30, minimum=0)  # upper bound for ?wait=
UPLOADS_MAX_FACES = env_int("UPLOADS_MAX_FACES", 10, minimum=1)  # faces predicted per photo, largest first

# Inference: faces per model batch in prediction tasks; the checkpoint `manage.py bootstrap` registers first.
INFERENCE_BATCH_SIZE = env_int("INFERENCE_BATCH_SIZE", 256, minimum=1)
# Upper bound for ?wait= on the on-demand heatmap POSTs (a waiting request holds a web thread; the work is a worker's).
INFERENCE_EXPLAIN_MAX_WAIT_SECONDS = env_int("INFERENCE_EXPLAIN_MAX_WAIT_SECONDS", 30, minimum=0)
# A newly active version gets its PublicTest predictions and heatmaps queued, and a re-scoring when it replaced one.
INFERENCE_REFRESH_ON_ACTIVATE = env_bool("INFERENCE_REFRESH_ON_ACTIVATE", True)
INFERENCE_DEFAULT_CHECKPOINT = env_path("INFERENCE_DEFAULT_CHECKPOINT", BASE_DIR / "ml" / "weights" / "default.pt",
                                        base=BASE_DIR)

# Importers: rows per bulk insert.
FACES_IMPORT_BATCH_SIZE = env_int("FACES_IMPORT_BATCH_SIZE", 2000, minimum=1)

# Relabeling queue (apps.review).
REVIEW_QUORUM = env_int("REVIEW_QUORUM", 2, minimum=1)  # matching votes that settle an item
REVIEW_MAX_VOTES = env_int("REVIEW_MAX_VOTES", 3, minimum=1)  # votes (not counting "unsure") before it is disputed
if REVIEW_MAX_VOTES < REVIEW_QUORUM:
    raise ImproperlyConfigured(f"REVIEW_MAX_VOTES={REVIEW_MAX_VOTES} must be >= REVIEW_QUORUM={REVIEW_QUORUM}.")
REVIEW_LEASE_SECONDS = env_int("REVIEW_LEASE_SECONDS", 300, minimum=1)
# Seconds a reviewer may take a vote back; after that it is final and the round's votes may be shown to them.
REVIEW_UNDO_SECONDS = env_int("REVIEW_UNDO_SECONDS", 120, minimum=0)
# The queue learns from its reviewers (apps/review/learning.py): a fit once this many items have settled, and again
# after every REVIEW_LEARN_EVERY more; each pair's error rate is shrunk toward the overall one by REVIEW_LEARN_SHRINK
# items (docs/benchmarks.md, "A queue that learns").
REVIEW_LEARN_MIN_SETTLED = env_int("REVIEW_LEARN_MIN_SETTLED", 200, minimum=1)
REVIEW_LEARN_EVERY = env_int("REVIEW_LEARN_EVERY", 100, minimum=1)
REVIEW_LEARN_SHRINK = env_int("REVIEW_LEARN_SHRINK", 20, minimum=0)
REVIEW_PREFETCH = env_int("REVIEW_PREFETCH", 3, minimum=1)  # items leased to one reviewer at a time
# After a scoring run, the bulk worker (nice 10) computes the review page's prediction and two Grad-CAM overlays for
# this many open items at the head of the queue, so that reviewers find them stored and the interactive worker stays
# free while they work. Measured here: 353 items in about 60 s (0.17 s an item), so 5,000 take about 14 minutes, and
# two PNGs of 10-20 KB each per item. Past them, leasing queues the overlays as before.
REVIEW_OVERLAY_PRECOMPUTE = env_int("REVIEW_OVERLAY_PRECOMPUTE", 5000, minimum=0)
REVIEW_SCORING_DIR = env_path("REVIEW_SCORING_DIR", VAR_DIR / "scoring", base=BASE_DIR)  # resumable fold files


# Training runs (apps.training).
def _points(name: str, default: float) -> float:
    """A non-negative number of percentage points, e.g. 0.5."""
    value = env_str(name, str(default))
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not number >= 0 or number == float("inf"):
        raise ImproperlyConfigured(f"Environment variable {name}={value!r} is malformed: expected a number >= 0.")
    return number


TRAINING_DIR = env_path("TRAINING_DIR", VAR_DIR / "training", base=BASE_DIR)  # per-run work dirs (resumable state)
TRAINING_PROMOTION_TOLERANCE = _points("TRAINING_PROMOTION_TOLERANCE", 0.5)  # points of accuracy / macro-F1
TRAINING_AUTO_MIN_CHANGED = env_int("TRAINING_AUTO_MIN_CHANGED", 200, minimum=1)  # labels changed -> periodic run

# Researcher galleries (apps.gallery): PrivateTest figures stay hidden unless an admin turns this on.
GALLERY_SHOW_PRIVATE_TEST = env_bool("GALLERY_SHOW_PRIVATE_TEST", False)
GALLERY_PAGE_SIZE = env_int("GALLERY_PAGE_SIZE", 100, minimum=1)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO").upper()},
}
