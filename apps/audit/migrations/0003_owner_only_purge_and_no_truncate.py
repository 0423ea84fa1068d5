"""Close what migration 0002 left open once the application no longer connects as the table owner
(docs/database-roles.md).

- TRUNCATE skips row triggers, so a statement-level BEFORE TRUNCATE trigger refuses it (the app role has
  no TRUNCATE privilege either; this also stops the owner from doing it by accident).
- DELETE was allowed to any session that set ``fiberstack.audit_retention``, which any role may set. Now
  the session must also be the table's owner, which the app role only becomes inside
  ``audit_purge_events(keep_days)``: a SECURITY DEFINER function that deletes rows older than
  ``keep_days`` by the database's clock, and nothing else. The owner may raise its floor with
  ``ALTER FUNCTION audit_purge_events(integer) SET fiberstack.audit_min_keep_days = '365'``.
"""

from django.db import migrations

GUARD_0003 = """
CREATE OR REPLACE FUNCTION audit_auditevent_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE'
       AND current_setting('fiberstack.audit_retention', true) = 'on'
       AND pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'USAGE') THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_auditevent is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
"""

# Migration 0002's version, restored on the way back.
GUARD_0002 = """
CREATE OR REPLACE FUNCTION audit_auditevent_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('fiberstack.audit_retention', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_auditevent is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
"""

TRUNCATE_TRIGGER = """
CREATE TRIGGER audit_auditevent_refuse_truncate
    BEFORE TRUNCATE ON audit_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION audit_auditevent_append_only();
"""

PURGE = """
CREATE FUNCTION audit_purge_events(keep_days integer) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET fiberstack.audit_min_keep_days = '1'
AS $$
DECLARE
    deleted bigint;
BEGIN
    IF keep_days IS NULL OR keep_days < current_setting('fiberstack.audit_min_keep_days')::integer THEN
        RAISE EXCEPTION 'audit_purge_events: keep_days % is below the floor of % days',
            keep_days, current_setting('fiberstack.audit_min_keep_days')
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM set_config('fiberstack.audit_retention', 'on', true);
    DELETE FROM audit_auditevent WHERE created_at < now() - make_interval(days => keep_days);
    GET DIAGNOSTICS deleted = ROW_COUNT;
    -- SET LOCAL would otherwise last until the caller's transaction ends.
    PERFORM set_config('fiberstack.audit_retention', 'off', true);
    RETURN deleted;
END;
$$;
REVOKE ALL ON FUNCTION audit_purge_events(integer) FROM PUBLIC;
DO $$ BEGIN
    -- Pin the lookup path of the definer function to this schema (pg_temp last, so a caller's temporary
    -- table can never stand in for the audit table).
    EXECUTE format('ALTER FUNCTION audit_purge_events(integer) SET search_path = %I, pg_temp', current_schema());
END $$;
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_append_only_trigger")]

    operations = [
        migrations.RunSQL(GUARD_0003, GUARD_0002),
        migrations.RunSQL(TRUNCATE_TRIGGER, "DROP TRIGGER IF EXISTS audit_auditevent_refuse_truncate ON audit_auditevent"),
        migrations.RunSQL(PURGE, "DROP FUNCTION IF EXISTS audit_purge_events(integer)"),
    ]
