#!/bin/sh
# Runs once, when the `db` volume is initialised (the image's /docker-entrypoint-initdb.d): the role the
# application connects as. It gets no attributes and no privileges here; the `migrate` service grants
# it DML after every migration (manage.py grant_app_role). See docs/database-roles.md.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v app_password="$FIBERSTACK_APP_DB_PASSWORD" <<'SQL'
CREATE ROLE fiberstack_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD :'app_password';
SQL
