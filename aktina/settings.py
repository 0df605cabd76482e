"""Aktina SCM settings: one module, every value from the environment (twelve-factor).

`.env` in the project root is read when present; see `.env.example` for every variable.
"""

from __future__ import annotations

import os
import secrets
import warnings
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import django
import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"


class _Env(environ.Env):
    """django-environ, but a value that does not parse is one line naming the variable (an
    ImproperlyConfigured that manage.py prints) instead of a bare ValueError traceback."""

    def get_value(self, var, cast=None, default=environ.Env.NOTSET, parse_default=False):
        try:
            return super().get_value(var, cast=cast, default=default, parse_default=parse_default)
        except (ValueError, TypeError, ArithmeticError, IndexError) as exc:
            kind = getattr(cast, "__name__", None) or type(cast).__name__
            raise ImproperlyConfigured(
                f"{var}={self.ENVIRON.get(var)!r} is not a valid {kind}"
            ) from exc

    def db_url(self, var="DATABASE_URL", default=environ.Env.NOTSET, engine=None):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "Engine not recognized": said below
                config = super().db_url(var, default=default, engine=engine)
        except (KeyError, ValueError):
            config = {}
        if config.get("ENGINE"):
            return config
        raise ImproperlyConfigured(
            f"{var}={self.ENVIRON.get(var)!r} is not a database URL like "
            "postgres://user:pass@host:5432/db or sqlite:///path/to/file.sqlite3"
        ) from None


env = _Env()

# DRF's throttle periods, by the first letter it reads.
_RATE_PERIODS = {"s": "second", "m": "minute", "h": "hour", "d": "day"}


def _rate(var: str, default: str) -> str:
    """A throttle rate like `20/min`, checked at start-up: DRF would only parse it on the first
    throttled request, and then answer every such request with a 500."""
    value = env.str(var, default=default)
    count, _, period = value.partition("/")
    word = _RATE_PERIODS.get(period[:1], "")
    if not (count.isdigit() and word and (word.startswith(period) or period == f"{word}s")):
        raise ImproperlyConfigured(
            f"{var}={value!r} is not a rate like 20/min (a count, then /s, /min, /hour or /day)"
        )
    return value


environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# --- database -------------------------------------------------------------------------------
# The embedded default is one SQLite file. IMMEDIATE transactions take the write lock at BEGIN,
# which django-q2 needs: without it concurrent result saves fail with "database is locked".
_SQLITE_DEFAULT = f"sqlite:///{VAR_DIR / 'aktina.sqlite3'}"
DATABASES = {"default": env.db_url("DATABASE_URL", default=_SQLITE_DEFAULT)}
_db = DATABASES["default"]
IS_SQLITE = _db["ENGINE"] == "django.db.backends.sqlite3"
if IS_SQLITE:
    if _db["NAME"] not in ("", ":memory:"):
        Path(_db["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    _db.setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": env.int("SQLITE_BUSY_TIMEOUT", default=30),
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # A file test database (not :memory:) lets integration tests share it with a real qcluster.
    _db["TEST"] = {"NAME": env.str("SQLITE_TEST_NAME", default=str(VAR_DIR / "test.sqlite3"))}
else:
    # Workers must keep connections: django-q2 otherwise opens 2-4 connections per task.
    _db["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=600)
    _db["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- secret key -----------------------------------------------------------------------------
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not IS_SQLITE:
        # Several hosts share a server database: each would invent its own key and reject the
        # others' sessions and django-q2 messages.
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DATABASE_URL is a server.")
    # The embedded default runs on one machine: a key generated once and kept beside the
    # database is shared by the web process and every worker, and never committed.
    _key_file = VAR_DIR / "secret_key"
    _key_file.parent.mkdir(parents=True, exist_ok=True)
    if not _key_file.exists():
        _key_file.write_text(secrets.token_urlsafe(50))
        _key_file.chmod(0o600)
    SECRET_KEY = _key_file.read_text().strip()

# --- apps -----------------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "drf_standardized_errors",
    # Lockout of repeated failed logins (admin and token endpoint): see "authentication" below.
    "axes",
    # Before django_q: its `qinfo` command is replaced by one that masks secrets.
    "aktina.core",
    # Before django_q: its `qcluster` runs the ledger's cluster (aktina.jobs.sentinel).
    "aktina.jobs",
    "django_q",
    # The operator's console (queue page, monitored tags, operations API), on the job layer.
    "aktina.jobs.console",
    "django_htmx",
    "aktina.notifications",
    "orders",
    "analytics",
    "ml",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "aktina.core.middleware.ApiJsonErrorsMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Turns a locked-out admin login into a 429 page (the token endpoint answers itself).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "aktina.urls"
WSGI_APPLICATION = "aktina.wsgi.application"
ASGI_APPLICATION = "aktina.asgi.application"

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
            ],
        },
    },
]

# --- authentication (docs/security.md) ------------------------------------------------------
# How many reverse proxies in front of the app append to X-Forwarded-For. 0 (the default): the
# client is REMOTE_ADDR and the header is ignored, so a client cannot choose its own address
# for throttles and lockouts. Set to 1 behind one proxy that appends the real address, etc.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
# django-axes: a username or an address with this many failed logins (admin or token
# endpoint, counted together) is refused for AXES_COOLOFF_MINUTES. `manage.py axes_reset`
# (or axes_reset_username NAME / axes_reset_ip ADDRESS) lifts it.
AUTHENTICATION_BACKENDS = [
    "aktina.core.auth.LockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
# Either one locks: guesses on one account from many addresses, or one address on many accounts.
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
# A success does not wipe the count: it would let an attacker clear its address's record of
# guesses on other accounts by logging in to its own.
AXES_RESET_ON_SUCCESS = False
AXES_CLIENT_IP_CALLABLE = "aktina.core.auth.client_ip"
AXES_HTTP_RESPONSE_CODE = 429
# API tokens expire this long after they are issued; a new login (or rotate) issues a fresh one.
TOKEN_TTL = timedelta(days=env.int("TOKEN_TTL_DAYS", default=30))

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.str("STATIC_ROOT", default=str(VAR_DIR / "static"))
Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)  # WhiteNoise warns per request otherwise
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve straight from the apps' static folders when collectstatic has not run (quick start).
WHITENOISE_USE_FINDERS = True

# --- cache ----------------------------------------------------------------------------------
# Shared by every process and host: rate limits and django-q2's stats depend on it, so never a
# per-process memory cache.
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="aktina"),
            "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient"},
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "aktina_cache",
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="aktina"),
        }
    }

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "aktina.core.tokens.ExpiringTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "aktina.core.filters.Pagination",
    "PAGE_SIZE": env.int("API_PAGE_SIZE", default=50),
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        # A garbage `?ordering=` is a 400, not silently the default order.
        "aktina.core.filters.StrictOrderingFilter",
    ],
    # One JSON parser for every endpoint (the token endpoint too): depth-limited, see below.
    "DEFAULT_PARSER_CLASSES": [
        "aktina.core.parsers.DepthLimitedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # Documents each operation's error responses in the schema (drf-standardized-errors).
    "DEFAULT_SCHEMA_CLASS": "aktina.core.schema.AutoSchema",
    "EXCEPTION_HANDLER": "drf_standardized_errors.handler.exception_handler",
    # The client address for throttles: REMOTE_ADDR unless proxies are declared (above).
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
    "DEFAULT_THROTTLE_RATES": {
        "auth": _rate("THROTTLE_AUTH", "20/min"),
        "order_create": _rate("THROTTLE_ORDER_CREATE", "600/min"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Aktina SCM API",
    "DESCRIPTION": "Orders in, everything slow in background jobs.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI and ReDoc served from drf-spectacular-sidecar: the docs work offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        name: f"drf_standardized_errors.openapi_serializers.{name}.choices"
        for name in (
            "ValidationErrorEnum",
            "ClientErrorEnum",
            "ServerErrorEnum",
            *(f"ErrorCode{code}Enum" for code in (401, 403, 404, 405, 406, 415, 429, 500)),
        )
    }
    # Three models have a `status`: each enum named for its model, not Status<hash>Enum.
    | {
        "JobRunStatusEnum": "aktina.jobs.models.JobRun.Status",
        "PredictionRunStatusEnum": "ml.models.PredictionRun.Status",
        "OrderStatusEnum": "orders.models.Order.Status",
    },
    # Replaces drf-spectacular's own enum hook (it leaves the error `code` enums colliding).
    "POSTPROCESSING_HOOKS": [
        "drf_standardized_errors.openapi_hooks.postprocess_schema_enums",
        "aktina.core.schema.attr_index_patterns",
    ],
}
DRF_STANDARDIZED_ERRORS = {
    "EXCEPTION_HANDLER_CLASS": "aktina.core.api.AktinaExceptionHandler",
    # 500 stays out of the schema: it is a bug, not a contract. 409/422 are documented on
    # the operations that raise them (aktina.core.api.client_error_response).
    "ALLOWED_ERROR_STATUS_CODES": ["400", "401", "403", "404", "405", "406", "415", "429"],
}
# Deepest JSON body any endpoint accepts (arrays/objects); deeper is a 400.
JSON_MAX_DEPTH = env.int("JSON_MAX_DEPTH", default=32)
# How long an Idempotency-Key keeps its first response, and how long a retry waits for a
# twin still in flight before answering 409 (PostgreSQL; SQLite serialises writers anyway).
IDEMPOTENCY_KEY_TTL_HOURS = env.int("IDEMPOTENCY_KEY_TTL_HOURS", default=24)
IDEMPOTENCY_KEY_WAIT_SECONDS = env.int("IDEMPOTENCY_KEY_WAIT_SECONDS", default=10)

# --- email ----------------------------------------------------------------------------------
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
# Seconds an SMTP connection may block; e-mail is sent by a job, so this bounds one attempt.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Aktina SCM <noreply@aktina.local>")

# --- security (switchable for deployments behind TLS) -----------------------------------------
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=False)
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
if env.bool("DJANGO_BEHIND_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # Secrets (SECRET_KEY, passwords, URL credentials) are masked in every line and traceback.
    "filters": {"redact_secrets": {"()": "aktina.core.redaction.RedactSecrets"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # django-axes logs its start and every failure at INFO; lockouts are WARNING.
        "axes": {"level": "WARNING"},
        # django-q2 logs a line per message at INFO; the ledger already records every run.
        "django-q": {"level": env.str("Q_LOG_LEVEL", default="WARNING")},
    },
}


# --- background jobs ------------------------------------------------------------------------
# Named queues of the job layer. Each may run as its own django-q2 cluster
# (`manage.py qcluster --name <queue>`) once listed in JOBS_DEDICATED_QUEUES; the others are
# served by the default cluster, so one plain `manage.py qcluster` serves everything.
def _queue_workers(queue: str, default: int, *old: str) -> int:
    """Q_WORKERS_<QUEUE> (the queue's name upper-cased, "-" as "_"), else an older name."""
    for name in (f"Q_WORKERS_{queue.upper().replace('-', '_')}", *old):
        if name in os.environ:
            workers = env.int(name)
            if workers < 1:
                raise ImproperlyConfigured(f"{name}={workers}: a queue needs at least 1 worker")
            return workers
    return default


JOBS_QUEUES = {
    "urgent": {"workers": _queue_workers("urgent", 2), "timeout": 300},
    "order-approval": {"workers": _queue_workers("order-approval", 2), "timeout": 120},
    "order-processing": {"workers": _queue_workers("order-processing", 2), "timeout": 300},
    "notifications": {"workers": _queue_workers("notifications", 2), "timeout": 60},
    "analytics": {"workers": _queue_workers("analytics", 1), "timeout": 120},
    "ml-processing": {
        # Q_WORKERS_ML: the name this setting had before.
        "workers": _queue_workers("ml-processing", 1, "Q_WORKERS_ML"),
        "timeout": 600,
    },
    "default": {"workers": _queue_workers("default", 2), "timeout": 300},
}
_dedicated = env.list("JOBS_DEDICATED_QUEUES", default=[])
JOBS_DEDICATED_QUEUES = list(JOBS_QUEUES) if _dedicated == ["*"] else _dedicated
_unknown_queues = set(JOBS_DEDICATED_QUEUES) - set(JOBS_QUEUES)
if _unknown_queues:
    raise ImproperlyConfigured(f"JOBS_DEDICATED_QUEUES names unknown queues: {_unknown_queues}")
JOBS_DEFAULT_CLUSTER = "aktina"
JOBS_SWEEP_SECONDS = env.int("JOBS_SWEEP_SECONDS", default=5)
# Must exceed django-q2's kill margin after a timeout (3.5 s); qcluster refuses to start if not.
JOBS_LEASE_GRACE_SECONDS = env.int("JOBS_LEASE_GRACE_SECONDS", default=30)
# Extra modules whose Job classes workers must know (the apps' jobs.py are found on their own).
JOBS_IMPORT = env.list("JOBS_IMPORT", default=[])
JOBS_RETENTION = timedelta(days=env.int("JOBS_RETENTION_DAYS", default=7))
# Every cluster refreshes its row in the process table this often (database clock); a cluster
# not heard from for JOBS_PROCESS_STALE_SECONDS is taken for dead and its runs are handed back.
JOBS_HEARTBEAT_SECONDS = env.float("JOBS_HEARTBEAT_SECONDS", default=2)
# At shutdown, busy workers get this long to finish their run before they are stopped and the
# run goes back to its queue (the whole shutdown stays under 10 s with the default).
JOBS_SHUTDOWN_GRACE_SECONDS = env.float("JOBS_SHUTDOWN_GRACE_SECONDS", default=3)
JOBS_PROCESS_STALE_SECONDS = env.float("JOBS_PROCESS_STALE_SECONDS", default=20)
if JOBS_PROCESS_STALE_SECONDS < 3 * JOBS_HEARTBEAT_SECONDS:
    raise ImproperlyConfigured(
        "JOBS_PROCESS_STALE_SECONDS must be at least 3 x JOBS_HEARTBEAT_SECONDS "
        f"({JOBS_PROCESS_STALE_SECONDS:g} < 3 x {JOBS_HEARTBEAT_SECONDS:g})"
    )

_max_timeout = max(q["timeout"] for q in JOBS_QUEUES.values())
Q_WORKERS = env.int("Q_WORKERS", default=2)
if Q_WORKERS < 1:
    # django-q2 would quietly start its own default (the CPU count) instead.
    raise ImproperlyConfigured(f"Q_WORKERS={Q_WORKERS}: a cluster needs at least 1 worker")
Q_CLUSTER = {
    # `name` salts django-q2's message signing, so every cluster of the site shares it.
    "name": JOBS_DEFAULT_CLUSTER,
    "workers": Q_WORKERS,
    "timeout": _max_timeout,
    # The job ledger is the queue: one INSERT per dispatch, batch dequeue, no message to lose.
    "broker_class": "aktina.jobs.broker.LedgerBroker",
    # Only django-q2's stock brokers read `retry`; bench/raw_settings.py runs one for comparison.
    "retry": _max_timeout + 120,
    "max_attempts": 2,
    "ack_failures": True,
    # The ledger keeps results: no Task row per success (also avoids SQLite lock contention).
    "save_limit": -1,
    "bulk": env.int("Q_BULK", default=10),
    # Seconds the broker waits after finding no due run: a delay is late by at most this much.
    "poll": env.float("Q_POLL", default=0.2),
    "catch_up": False,
    "label": "Django Q (broker)",
    # Always defined: `qcluster --name X` crashes without it.
    "ALT_CLUSTERS": {
        name: {
            "workers": conf["workers"],
            "timeout": conf["timeout"],
            "retry": conf["timeout"] + 120,
        }
        for name, conf in JOBS_QUEUES.items()
    },
}

# --- Django's Tasks API (`@task`) on the job ledger ------------------------------------------
# Built into Django 6 (`django.tasks`); on 5.2 the `django-tasks` backport provides it.
if django.VERSION < (6, 0):
    INSTALLED_APPS.append("django_tasks")
TASKS = {
    "default": {
        "BACKEND": "aktina.jobs.tasks_backend.LedgerBackend",
        # QUEUES left out: every queue of JOBS_QUEUES. Defaults for @task functions that do not
        # pass tries/backoff/timeout themselves.
        "OPTIONS": {
            "TRIES": env.int("TASKS_DEFAULT_TRIES", default=1),
            "BACKOFF": env.list("TASKS_DEFAULT_BACKOFF", cast=float, default=[0]),
            "TIMEOUT": env.int("TASKS_DEFAULT_TIMEOUT", default=60),
        },
    }
}

# --- Prometheus metrics (GET /metrics) -------------------------------------------------------
# The bearer secret a Prometheus server scrapes with; empty: only staff tokens/sessions may read.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

# --- application settings -------------------------------------------------------------------
# Where people reach this site (scheme and host, no trailing slash): the links in e-mails.
SITE_URL = env.str("SITE_URL", default="http://localhost:8000").rstrip("/")
ORDER_AUTO_APPROVE_LIMIT = env.get_value(
    "ORDER_AUTO_APPROVE_LIMIT", cast=Decimal, default="10000", parse_default=True
)
ORDER_MAX_LINES = env.int("ORDER_MAX_LINES", default=100)
# The most units of one product an order may ask for; more is a 400 naming this setting.
ORDER_MAX_LINE_QUANTITY = env.int("ORDER_MAX_LINE_QUANTITY", default=10000)
# The most units one stock receipt may add (a typo of three extra zeros is refused).
STOCK_RECEIVE_MAX = env.int("STOCK_RECEIVE_MAX", default=100000)
ORDER_CUSTOMERS_MAY_SET_URGENT = env.bool("ORDER_CUSTOMERS_MAY_SET_URGENT", default=False)
ORDER_LABEL_DELAY_SECONDS = env.int("ORDER_LABEL_DELAY_SECONDS", default=300)
ORDER_REMINDER_DELAY_SECONDS = env.int("ORDER_REMINDER_DELAY_SECONDS", default=86400)
# The carrier's quota: label calls per minute across every worker and host.
ORDER_CARRIER_RATE_LIMIT = env.int("ORDER_CARRIER_RATE_LIMIT", default=10)
# Dotted path of the carrier client class (orders.carriers.CarrierClient).
ORDER_CARRIER_CLIENT = env.str("ORDER_CARRIER_CLIENT", default="orders.carriers.LocalCarrier")
ML_KEEP_RUNS = env.int("ML_KEEP_RUNS", default=3)
ML_FORECAST_FREQ = env.str("ML_FORECAST_FREQ", default="W")
ML_FORECAST_HORIZON = env.int("ML_FORECAST_HORIZON", default=8)
# An order's analytics run waits this long so the status changes of one burst (placed,
# approved, fulfilling) coalesce into one run that reads the latest state.
ANALYTICS_COALESCE_SECONDS = env.float("ANALYTICS_COALESCE_SECONDS", default=10.0)
QUEUE_WAIT_ALERT_SECONDS = env.int("QUEUE_WAIT_ALERT_SECONDS", default=300)
# Per-queue overrides, e.g. "urgent=60,analytics=900".
QUEUE_WAIT_ALERT_SECONDS_BY_QUEUE = env.dict(
    "QUEUE_WAIT_ALERT_SECONDS_BY_QUEUE", cast={"value": int}, default={}
)
if _unknown := sorted(set(QUEUE_WAIT_ALERT_SECONDS_BY_QUEUE) - set(JOBS_QUEUES)):
    raise ImproperlyConfigured(
        f"QUEUE_WAIT_ALERT_SECONDS_BY_QUEUE names unknown queues: {_unknown}"
    )
