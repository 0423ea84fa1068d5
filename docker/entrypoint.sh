#!/usr/bin/env bash
# Container entrypoint for the FiberStack image.
#
#   web | worker | beat     wait for PostgreSQL, apply migrations, then exec the role's server
#   migrate                 only wait for PostgreSQL and apply migrations (compose's one-shot service)
#   healthcheck ROLE        probe a running role (used by compose; no migrations)
#   manage ARGS...          python manage.py ARGS (no automatic migrations)
#   anything else           exec'd as given
set -euo pipefail

# Every role migrates before starting, so no container ever runs code against an older schema.
# Several containers start at once; the advisory lock makes the first one do the work and the
# others wait and then find nothing to apply (Django's migrate is not safe to run concurrently).
# Migrations run as DATABASE_OWNER_URL's role when it is set, which then grants the app role
# (DATABASE_URL's user) DML only; unset, one role does everything (docs/database-roles.md).
migrate() {
  if [ "${FIBERSTACK_MIGRATE:-1}" = "0" ]; then
    return 0
  fi
  local app_url="${DATABASE_URL:-}"
  DATABASE_URL="${DATABASE_OWNER_URL:-$app_url}" FIBERSTACK_APP_DATABASE_URL="$app_url" python - <<'PY'
import os
import sys
import time
from urllib.parse import unquote, urlsplit

import django

django.setup()

from django.core.management import call_command
from django.db import connection
from django.db.utils import OperationalError

LOCK_ID = 0x46494245  # "FIBE": constant key shared by every FiberStack container
deadline = time.monotonic() + int(os.environ.get("FIBERSTACK_DB_WAIT", "60"))
while True:
    try:
        connection.ensure_connection()
        break
    except OperationalError as exc:
        if time.monotonic() > deadline:
            sys.exit(f"entrypoint: database not reachable: {exc}")
        print("entrypoint: waiting for the database...", flush=True)
        time.sleep(2)

with connection.cursor() as cursor:
    cursor.execute("SELECT pg_advisory_lock(%s)", [LOCK_ID])
    try:
        call_command("migrate", interactive=False, verbosity=1)
        app = unquote(urlsplit(os.environ["FIBERSTACK_APP_DATABASE_URL"]).username or "")
        if app and app != connection.settings_dict["USER"]:
            call_command("grant_app_role", app)
    finally:
        cursor.execute("SELECT pg_advisory_unlock(%s)", [LOCK_ID])
PY
}

healthcheck() {
  case "${1:-web}" in
    web)
      # Send a Host header the app accepts (ALLOWED_HOSTS), or Django answers 400 to the probe.
      exec python - <<'PY'
import os
import sys
import urllib.request

hosts = [h.strip().lstrip(".") for h in os.environ.get("ALLOWED_HOSTS", "").split(",")]
host = next((h for h in hosts if h and h != "*"), "localhost")
request = urllib.request.Request(
    f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/healthz", headers={"Host": host}
)
try:
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - fixed local URL
        sys.exit(0 if response.status == 200 else 1)
except Exception as exc:  # any failure means unhealthy
    sys.exit(f"healthz failed: {exc}")
PY
      ;;
    worker)
      # Ping this container's worker only, not every worker on the broker.
      exec celery -A fiberstack inspect ping --destination "celery@${HOSTNAME}" --timeout 10
      ;;
    *)
      echo "entrypoint: unknown healthcheck role '$1'" >&2
      exit 2
      ;;
  esac
}

role="${1:-web}"
case "$role" in
  web)
    migrate
    # One daphne per core (WEB_WORKERS overrides) on one listening socket: fiberstack/webserver.py.
    # No --proxy-headers: daphne would take the left-most (client-written) X-Forwarded-For entry as the
    # peer. The application reads it itself, from FIBERSTACK_TRUSTED_PROXIES only (apps/core/client_ip.py).
    exec python -m fiberstack.webserver --bind 0.0.0.0 --port "${PORT:-8000}" --workers "${WEB_WORKERS:-0}"
    ;;
  worker)
    migrate
    # CELERY_QUEUES splits workers (e.g. one deployment for "maintenance": rollups, retention); the
    # default consumes every queue fiberstack/celery_routes.py routes to.
    exec celery -A fiberstack worker --loglevel "${LOG_LEVEL:-info}" --concurrency "${CELERY_CONCURRENCY:-2}" \
      --queues "${CELERY_QUEUES:-celery,maintenance}"
    ;;
  migrate)
    FIBERSTACK_MIGRATE=1 migrate
    ;;
  beat)
    migrate
    # Exactly one beat may run per deployment, or every periodic task runs twice.
    exec celery -A fiberstack beat --loglevel "${LOG_LEVEL:-info}" \
      --schedule "${CELERY_BEAT_SCHEDULE_FILE:-${FIBERSTACK_VAR_DIR:-/app/var}/beat/celerybeat-schedule}"
    ;;
  healthcheck)
    shift
    healthcheck "$@"
    ;;
  manage)
    shift
    exec python manage.py "$@"
    ;;
  *)
    exec "$@"
    ;;
esac
