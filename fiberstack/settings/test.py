"""Settings for the test suite: real PostgreSQL and Redis (from DATABASE_URL / REDIS_URL), fast hashing."""

from __future__ import annotations

import os

from fiberstack.settings.base import *  # noqa: F403
from fiberstack.settings.base import CACHES, CHANNEL_LAYERS, DATABASES, REDIS_URL

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
DATABASES["default"]["CONN_MAX_AGE"] = 0
# No pool: pytest-django and the suite's own extra connections (tests/timescale, the app-role tests) open
# and close connections by hand, which a pool's kept-open sessions would outlive.
DATABASES["default"]["OPTIONS"].pop("pool", None)
# Several checkouts may share one PostgreSQL server; FIBERSTACK_TEST_DB keeps their databases apart.
DATABASES["default"]["TEST"] = {"NAME": os.environ.get("FIBERSTACK_TEST_DB", "test_fiberstack")}
CACHES["default"]["KEY_PREFIX"] = f"fs-test-{os.getpid()}"
# A Redis reply slowed by a loaded CI machine must fail that call only, not switch Redis off for the
# process (apps/core/redis.py); the tests of that window set it themselves.
FIBERSTACK_REDIS_DOWN_RETRY_SECONDS = 0
CHANNEL_LAYERS["default"]["CONFIG"] = {"hosts": [REDIS_URL], "prefix": f"fs-test-{os.getpid()}"}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
