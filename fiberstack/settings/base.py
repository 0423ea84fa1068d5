"""Settings shared by every environment. Everything that differs between machines comes from the
environment (see settings/env.py); dev/test/prod only change defaults and strictness."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab

from fiberstack.settings.env import env_bool, env_int, env_list, env_secret, env_str

BASE_DIR = Path(__file__).resolve().parents[2]
VAR_DIR = Path(env_str("FIBERSTACK_VAR_DIR", str(BASE_DIR / "var")))

SECRET_KEY = env_secret("SECRET_KEY", "insecure-dev-key-change-me-" + "x" * 40)
# Pepper for agent-token HMACs: a database dump alone cannot be used to verify guessed tokens.
TOKEN_PEPPER = env_secret("TOKEN_PEPPER", SECRET_KEY)
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "apps.core",
    "apps.audit",
    "apps.organizations",
    "apps.accounts",
    "apps.hosts",
    "apps.metrics",
    "apps.logs",
    "apps.alerts",
    "apps.escalation",
    "apps.dashboards",
    "django_elasticsearch_dsl",  # only apps.logs.es uses it, and only when ELASTICSEARCH_URL is set
]

MIDDLEWARE = [
    "apps.core.timing.ServerTimingMiddleware",  # removes itself unless FIBERSTACK_SERVER_TIMING
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "apps.core.middleware.RequestIdMiddleware",
    "apps.core.middleware.ApiErrorMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "apps.organizations.access.OrganizationMiddleware",
    "apps.accounts.middleware.TwoFactorEnforcementMiddleware",
    "apps.accounts.middleware.SessionActivityMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "fiberstack.urls"
ASGI_APPLICATION = "fiberstack.asgi.application"
WSGI_APPLICATION = None

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

DATABASE_URL = env_str("DATABASE_URL", "postgres://fiberstack@127.0.0.1:54329/fiberstack")
DATABASES = {
    "default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60)),
}
DATABASES["default"]["ENGINE"] = "django.db.backends.postgresql"
DATABASES["default"].setdefault("OPTIONS", {})

# Django's native psycopg pool, for `make run` as for production (a development server without it answered
# the query API 2-3x slower: bench/README.md). Under ASGI every request's sync code runs in a new thread and
# connections are per thread, so CONN_MAX_AGE never reused one (one backend fork + auth per request). The
# pool is per process and shared by those threads; Django requires CONN_MAX_AGE = 0 with it. DB_POOL=false
# behind a transaction-mode PgBouncer, where a client-side pool is redundant. The test settings turn it off.
if env_bool("DB_POOL", True):
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"]["pool"] = {
        "min_size": env_int("DB_POOL_MIN_SIZE", 2),
        "max_size": env_int("DB_POOL_MAX_SIZE", 8),
        "timeout": env_int("DB_POOL_TIMEOUT", 10),
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:63790/0")
# Redis is optional on the request path, so waiting for it must be short (apps/core/redis.py): a
# connect or a reply slower than these fails and the caller carries on without Redis; after a failed
# connect, connects to that server fail at once for FIBERSTACK_REDIS_DOWN_RETRY_SECONDS.
FIBERSTACK_REDIS_CONNECT_TIMEOUT_MS = env_int("FIBERSTACK_REDIS_CONNECT_TIMEOUT_MS", 200)
FIBERSTACK_REDIS_TIMEOUT_MS = env_int("FIBERSTACK_REDIS_TIMEOUT_MS", 500)
FIBERSTACK_REDIS_DOWN_RETRY_SECONDS = env_int("FIBERSTACK_REDIS_DOWN_RETRY_SECONDS", 5)
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "fs",
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "CONNECTION_FACTORY": "apps.core.redis.ConnectionFactory",
            # Pages and ingest must keep working when Redis is down (DESIGN "Redis"): cache misses
            # instead of 500s. Callers that need to know (rate limiting) talk to Redis directly.
            "IGNORE_EXCEPTIONS": True,
            "SOCKET_CONNECT_TIMEOUT": FIBERSTACK_REDIS_CONNECT_TIMEOUT_MS / 1000,
            "SOCKET_TIMEOUT": FIBERSTACK_REDIS_TIMEOUT_MS / 1000,
        },
    }
}
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": "fs:channels"},
    }
}

SESSION_ENGINE = "django.contrib.sessions.backends.db"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "accounts_home:home"
LOGOUT_REDIRECT_URL = "accounts:login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
NODE_MODULES_DIR = BASE_DIR / "node_modules"
# Browser libraries come from npm (package.json "dependencies", `npm ci`) and are served like our own
# static files: no CDN, works offline, and collectstatic/whitenoise version them. A checkout without
# node_modules still starts (charts say the library is missing) instead of failing the system checks.
_NPM_STATIC = [("vendor/uplot", NODE_MODULES_DIR / "uplot" / "dist")]
STATICFILES_DIRS = [BASE_DIR / "static", *(entry for entry in _NPM_STATIC if entry[1].is_dir())]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "FiberStack <fiberstack@localhost>")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.organizations.authentication.AgentTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "apps.core.api.parsers.JSONWithoutNULParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "apps.core.api.pagination.CursorPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "apps.core.api.exceptions.json_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "FiberStack API",
    "DESCRIPTION": "Metrics ingest, query, alerting and on-call configuration.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    # /api/v1/metrics, /logs and /events: GET is a DRF read view behind a plain ingest door (core/api/schema.py).
    "PREPROCESSING_HOOKS": ["apps.core.api.schema.include_read_sides"],
    # The docs page's JavaScript is served from our static files: no CDN, works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    "metrics.ensure_partitions": {
        "task": "metrics.ensure_partitions",
        "schedule": timedelta(hours=1),
        "options": {"expires": 3600},
    },
    "metrics.rollup": {
        "task": "metrics.rollup",
        "schedule": timedelta(minutes=1),
        "options": {"expires": 60},
    },
    "metrics.apply_retention": {
        "task": "metrics.apply_retention",
        "schedule": timedelta(hours=1),
        "options": {"expires": 3600},
    },
    "metrics.compress_chunks": {
        "task": "metrics.compress_chunks",
        "schedule": timedelta(hours=1),
        "options": {"expires": 3600},
    },
    "logs.maintain_storage": {
        "task": "logs.maintain_storage",
        "schedule": timedelta(hours=1),
        "options": {"expires": 3600},
    },
    "logs.expire_es_indices": {
        "task": "logs.expire_es_indices",
        "schedule": timedelta(hours=1),
        "options": {"expires": 3600},
    },
    "alerts.check_rules": {
        "task": "alerts.check_rules",
        "schedule": timedelta(seconds=2),
        "options": {"expires": 2},
    },
    "alerts.send_reminders": {
        "task": "alerts.send_reminders",
        "schedule": timedelta(seconds=30),
        "options": {"expires": 30},
    },
    "alerts.sweep_notifications": {
        "task": "alerts.sweep_notifications",
        "schedule": timedelta(seconds=10),
        "options": {"expires": 10},
    },
    "escalation.sweep_escalations": {
        "task": "escalation.sweep_escalations",
        "schedule": timedelta(seconds=15),
        "options": {"expires": 15},
    },
    "escalation.check_shift_changes": {
        "task": "escalation.check_shift_changes",
        "schedule": timedelta(minutes=1),
        "options": {"expires": 60},
    },
    "audit.apply_retention": {
        "task": "audit.apply_retention",
        "schedule": crontab(minute=17, hour=3),
        "options": {"expires": 86400},
    },
}

# How API requests find their organization and role (token or session); see apps/organizations/access.py.
FIBERSTACK_API_ACCESS_RESOLVER = "apps.organizations.access.resolve_api_access"
# The site's public address, for absolute links made outside a request (`add_member`'s set-password link).
FIBERSTACK_BASE_URL = env_str("FIBERSTACK_BASE_URL", "http://127.0.0.1:8000")

# Metrics storage and ingest limits (docs/agents.md documents each one).
FIBERSTACK_TIMESCALEDB = env_str("FIBERSTACK_TIMESCALEDB", "auto")  # auto | on | off
FIBERSTACK_PARTITIONS_AHEAD = env_int("FIBERSTACK_PARTITIONS_AHEAD", 3)
FIBERSTACK_HOST_LABELS = env_list("FIBERSTACK_HOST_LABELS", ["host", "hostname", "node_id", "instance"])
FIBERSTACK_INGEST_MAX_BODY_BYTES = env_int("FIBERSTACK_INGEST_MAX_BODY_BYTES", 16 * 1024 * 1024)  # on the wire
FIBERSTACK_INGEST_MAX_DECODED_BYTES = env_int("FIBERSTACK_INGEST_MAX_DECODED_BYTES", 64 * 1024 * 1024)
FIBERSTACK_INGEST_MAX_SAMPLES = env_int("FIBERSTACK_INGEST_MAX_SAMPLES", 500_000)
FIBERSTACK_INGEST_MAX_PAST_S = env_int("FIBERSTACK_INGEST_MAX_PAST_S", 7 * 86400)
FIBERSTACK_INGEST_MAX_FUTURE_S = env_int("FIBERSTACK_INGEST_MAX_FUTURE_S", 600)
FIBERSTACK_INGEST_NAN_POLICY = env_str("FIBERSTACK_INGEST_NAN_POLICY", "drop")  # drop | reject
# Per series, as Mimir limits them; a series over a limit is rejected, the rest of the request stored.
FIBERSTACK_INGEST_MAX_LABELS = env_int("FIBERSTACK_INGEST_MAX_LABELS", 64)  # not counting the metric name
FIBERSTACK_INGEST_MAX_NAME_BYTES = env_int("FIBERSTACK_INGEST_MAX_NAME_BYTES", 200)  # metric and label names
FIBERSTACK_INGEST_MAX_LABEL_VALUE_BYTES = env_int("FIBERSTACK_INGEST_MAX_LABEL_VALUE_BYTES", 2048)
FIBERSTACK_INGEST_RATE_REQUESTS = env_int("FIBERSTACK_INGEST_RATE_REQUESTS", 200)  # per token per window; 0 = off
FIBERSTACK_INGEST_RATE_SAMPLES = env_int("FIBERSTACK_INGEST_RATE_SAMPLES", 2_000_000)
FIBERSTACK_INGEST_RATE_WINDOW = env_int("FIBERSTACK_INGEST_RATE_WINDOW", 1)  # seconds
FIBERSTACK_HOST_BROADCAST_INTERVAL = env_int("FIBERSTACK_HOST_BROADCAST_INTERVAL", 5)
# Least time between two frames of new chart points for one host (apps/metrics/live.py).
FIBERSTACK_LIVE_POINTS_INTERVAL_MS = env_int("FIBERSTACK_LIVE_POINTS_INTERVAL_MS", 1000)
# Least time between two "new data for metric names" notices to an organization's open saved dashboards.
FIBERSTACK_LIVE_DASHBOARD_INTERVAL_MS = env_int("FIBERSTACK_LIVE_DASHBOARD_INTERVAL_MS", 2000)
# Called after every committed ingest request with one apps.metrics.hooks.IngestBatch, in this order; a
# consumer that raises is logged and skipped. Metrics never imports them: a new consumer plugs in here.
FIBERSTACK_INGEST_CONSUMERS = [
    "apps.metrics.hot.consume",  # latest value per series -> Redis hot tier
    "apps.hosts.seen.consume",  # hosts' last_seen + live "hosts.update" events (throttled per host)
    "apps.metrics.live.consume",  # new points for the charts of open host pages (throttled per host)
    "apps.metrics.live_dashboards.consume",  # "new data for names" to open saved dashboards (per organization)
    "apps.alerts.evaluation.consumer.consume",  # rules the batch's series can answer, off the request path
]
# Called with each apps.alerts.hooks.AlertTransition after commit; alerts never imports them.
FIBERSTACK_ALERT_CONSUMERS: list[str] = [
    "apps.escalation.engine.consume",  # start / stand down / end the alert's escalation
    "apps.alerts.search.consume",  # the alert's copy in Elasticsearch (when ELASTICSEARCH_URL is set)
]
# Escalation: the queue step tasks go to ("" = the default route), how overdue a step must be before the
# sweep re-sends it, and how long an acknowledge/resolve link in a page stays valid.
FIBERSTACK_ESCALATION_QUEUE = env_str("FIBERSTACK_ESCALATION_QUEUE", "")
# The queue outbox deliveries are sent to ("" = the default route).
FIBERSTACK_DELIVERY_QUEUE = env_str("FIBERSTACK_DELIVERY_QUEUE", "")
FIBERSTACK_ESCALATION_SWEEP_GRACE_SECONDS = env_int("FIBERSTACK_ESCALATION_SWEEP_GRACE_SECONDS", 30)
FIBERSTACK_ESCALATION_LINK_MAX_AGE_SECONDS = env_int("FIBERSTACK_ESCALATION_LINK_MAX_AGE_SECONDS", 24 * 3600)
# /readyz "details" come from these callables (dotted paths, `() -> dict`), so core imports no domain app.
FIBERSTACK_READINESS_PROVIDERS = ["apps.metrics.rollups.jobs.readiness_details"]
FIBERSTACK_QUERY_MAX_SERIES = env_int("FIBERSTACK_QUERY_MAX_SERIES", 1000)
FIBERSTACK_QUERY_MAX_POINTS = env_int("FIBERSTACK_QUERY_MAX_POINTS", 500_000)
# Every statement of an API read request is cancelled after this long (503 + Retry-After); 0 = no limit.
FIBERSTACK_API_STATEMENT_TIMEOUT_MS = env_int("FIBERSTACK_API_STATEMENT_TIMEOUT_MS", 10_000)
# Rollups and retention (apps/metrics/rollups/, apps/metrics/retention.py).
FIBERSTACK_ROLLUP_LATENESS_SECONDS = env_int("FIBERSTACK_ROLLUP_LATENESS_SECONDS", 600)  # late samples re-rolled
FIBERSTACK_ROLLUP_TIME_BUDGET_SECONDS = env_int("FIBERSTACK_ROLLUP_TIME_BUDGET_SECONDS", 45)  # per beat run
# A rollup bucket of at most this many values keeps them (exact percentiles) instead of a quantile sketch
# (apps.metrics.sketch.EXACT_MAX_COUNT); 0 = sketches only: smaller tiers and cheaper 5m rollups, percentiles
# within 1 % everywhere (bench/README.md, "Rollup tiers").
FIBERSTACK_ROLLUP_KEEP_VALUES_UP_TO = env_int("FIBERSTACK_ROLLUP_KEEP_VALUES_UP_TO", 12)
FIBERSTACK_COMPRESS_AFTER_DAYS = env_int("FIBERSTACK_COMPRESS_AFTER_DAYS", 3)  # TimescaleDB raw chunks
# Plain PostgreSQL: a raw day is compressed this long after it ends, once its rollups are final.
FIBERSTACK_COMPRESS_RAW_AFTER_SECONDS = env_int("FIBERSTACK_COMPRESS_RAW_AFTER_SECONDS", 86_400)
# Plain PostgreSQL: a closed hour of the open 1m partition is compressed this long after it ends, once final.
FIBERSTACK_ROLLUP_COMPRESS_HOURS_AFTER = env_int("FIBERSTACK_ROLLUP_COMPRESS_HOURS_AFTER", 1)
# manage.py storage_report and the admin's storage page: (label, table, time column) of the tables other than
# the metric tiers, summed over their partitions or chunks like the tiers.
FIBERSTACK_STORAGE_REPORT_TABLES = [("logs", "logs_entry", "time"), ("events", "logs_event", "time")]
FIBERSTACK_QUERY_MAX_POINTS_PER_SERIES = env_int("FIBERSTACK_QUERY_MAX_POINTS_PER_SERIES", 11_000)

# Notification delivery (apps/alerts/delivery/). Attempt n of a notification that failed in a retryable way
# (timeout, connection error, 408/429/5xx) waits min(CAP, BASE * 2**(n-1)) s, minus up to 10 % jitter so a
# receiver coming back is not hit by every retry at once; after MAX_ATTEMPTS tries it is marked failed.
FIBERSTACK_NOTIFY_BACKOFF_BASE_SECONDS = env_int("FIBERSTACK_NOTIFY_BACKOFF_BASE_SECONDS", 5)
FIBERSTACK_NOTIFY_BACKOFF_CAP_SECONDS = env_int("FIBERSTACK_NOTIFY_BACKOFF_CAP_SECONDS", 600)
FIBERSTACK_NOTIFY_MAX_ATTEMPTS = env_int("FIBERSTACK_NOTIFY_MAX_ATTEMPTS", 8)  # ~10 min of retries by default
FIBERSTACK_NOTIFY_TIMEOUT_SECONDS = env_int("FIBERSTACK_NOTIFY_TIMEOUT_SECONDS", 10)  # per HTTP phase / SMTP op
# How long a worker's claim on a notification lasts; after it the sweep hands the notification to another
# worker (the first one crashed or hung). Must exceed the longest send: a few TIMEOUTs (connect, write, read).
FIBERSTACK_NOTIFY_CLAIM_SECONDS = env_int("FIBERSTACK_NOTIFY_CLAIM_SECONDS", 60)
FIBERSTACK_NOTIFY_SWEEP_LIMIT = env_int("FIBERSTACK_NOTIFY_SWEEP_LIMIT", 500)  # deliver tasks per 10 s sweep
# Rule evaluation (apps/alerts/evaluation/): rules claimed per 2 s beat tick, rules per worker task, and the
# statement timeout of one rule's reads (a slow rule is cancelled and recorded as errored, never the tick).
FIBERSTACK_ALERTS_TICK_LIMIT = env_int("FIBERSTACK_ALERTS_TICK_LIMIT", 20_000)
FIBERSTACK_ALERTS_EVALUATION_CHUNK = env_int("FIBERSTACK_ALERTS_EVALUATION_CHUNK", 1_000)
FIBERSTACK_ALERTS_STATEMENT_TIMEOUT_MS = env_int("FIBERSTACK_ALERTS_STATEMENT_TIMEOUT_MS", 5_000)

# Logs and events (docs/logs.md).
FIBERSTACK_LOGS_RETENTION_DAYS = env_int("FIBERSTACK_LOGS_RETENTION_DAYS", 30)
FIBERSTACK_EVENTS_RETENTION_DAYS = env_int("FIBERSTACK_EVENTS_RETENTION_DAYS", 90)
FIBERSTACK_LOGS_MAX_ENTRIES = env_int("FIBERSTACK_LOGS_MAX_ENTRIES", 50_000)  # per request
FIBERSTACK_LOGS_MAX_ENTRY_BYTES = env_int("FIBERSTACK_LOGS_MAX_ENTRY_BYTES", 256 * 1024)  # chars of one entry
FIBERSTACK_LOGS_MAX_PAST_S = env_int("FIBERSTACK_LOGS_MAX_PAST_S", 7 * 86400)
FIBERSTACK_LOGS_LIVE_MAX_ENTRIES = env_int("FIBERSTACK_LOGS_LIVE_MAX_ENTRIES", 200)  # per request, to live tail
ELASTICSEARCH_COMPAT_VERSION = env_str("ELASTICSEARCH_COMPAT_VERSION", "8.11.0")  # answered to shippers on GET /
# Optional copies of log entries, events and alerts in Elasticsearch (apps/logs/es.py); empty: PostgreSQL
# only. No network use without it: the connection is lazy and autosync is off (rows are written by COPY).
ELASTICSEARCH_URL = env_str("ELASTICSEARCH_URL", "")
ELASTICSEARCH_DSL = {"default": {"hosts": ELASTICSEARCH_URL or "http://127.0.0.1:9200", "request_timeout": 10}}
ELASTICSEARCH_DSL_AUTOSYNC = False
ELASTICSEARCH_DSL_AUTO_REFRESH = False
ELASTICSEARCH_DSL_SIGNAL_PROCESSOR = "django_elasticsearch_dsl.signals.BaseSignalProcessor"
FIBERSTACK_LOGS_ES_INDEX = env_str("FIBERSTACK_LOGS_ES_INDEX", "fiber-logs")  # daily: <name>-YYYY.MM.DD
FIBERSTACK_EVENTS_ES_INDEX = env_str("FIBERSTACK_EVENTS_ES_INDEX", "fiber-events")
FIBERSTACK_ALERTS_ES_INDEX = env_str("FIBERSTACK_ALERTS_ES_INDEX", "fiber-alerts")
FIBERSTACK_LOGS_ES_SEARCH = env_bool("FIBERSTACK_LOGS_ES_SEARCH", True)  # search from it (PostgreSQL on errors)
FIBERSTACK_LOGS_ES_SEARCH_TIMEOUT_S = env_int("FIBERSTACK_LOGS_ES_SEARCH_TIMEOUT_S", 3)  # then PostgreSQL answers
FIBERSTACK_LOGS_ES_QUEUE = env_str("FIBERSTACK_LOGS_ES_QUEUE", "")  # queue of the copy tasks ("" = default route)

FIBERSTACK_HOST_STALE_AFTER_SECONDS = env_int("FIBERSTACK_HOST_STALE_AFTER_SECONDS", 300)  # then a host is "down"

OTP_TOTP_ISSUER = "FiberStack"

# Two-factor: staff and organization owners/admins must enrol when this is on (on in prod).
FIBERSTACK_REQUIRE_2FA_FOR_ADMINS = env_bool("FIBERSTACK_REQUIRE_2FA_FOR_ADMINS", False)
# A Server-Timing header (app time, SQL time and count) on every response; off: it tells outsiders what is slow.
FIBERSTACK_SERVER_TIMING = env_bool("FIBERSTACK_SERVER_TIMING", False)
FIBERSTACK_LOGIN_RATE_LIMIT = env_int("FIBERSTACK_LOGIN_RATE_LIMIT", 10)  # failures per window per user+IP
FIBERSTACK_LOGIN_RATE_WINDOW = env_int("FIBERSTACK_LOGIN_RATE_WINDOW", 900)  # seconds

# Client addresses, password-reset throttling and request body limits (docs/requests.md).
# X-Forwarded-For is believed only from these proxy networks (CIDR); empty: the socket peer is the client.
FIBERSTACK_TRUSTED_PROXIES = env_list("FIBERSTACK_TRUSTED_PROXIES", [])
FIBERSTACK_PASSWORD_RESET_RATE_LIMIT = env_int("FIBERSTACK_PASSWORD_RESET_RATE_LIMIT", 5)  # per address/IP
FIBERSTACK_PASSWORD_RESET_RATE_WINDOW = env_int("FIBERSTACK_PASSWORD_RESET_RATE_WINDOW", 3600)  # seconds
# Bodies over the limit get a 413 before Django reads them (apps/core/asgi_limits.py). Pages, admin and
# the config API share Django's own DATA_UPLOAD_MAX_MEMORY_SIZE default (2.5 MiB); ingest doors (these
# path regexes) accept FIBERSTACK_INGEST_MAX_BODY_BYTES.
FIBERSTACK_MAX_REQUEST_BODY_BYTES = env_int("FIBERSTACK_MAX_REQUEST_BODY_BYTES", 2_621_440)
FIBERSTACK_INGEST_PATHS = [
    r"/write", r"/api/v2/write", r"/api/push",
    r"/api/v1/(write|prom/write|collectd|metrics)", r"/api/v1/agents/[^/]+/metrics",
]
FIBERSTACK_AUDIT_RETENTION_DAYS = env_int("FIBERSTACK_AUDIT_RETENTION_DAYS", 400)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
