"""The database's cache epoch (apps.hosts.cache_scope): one random UUID per database, so that ids cached
in Redis for another database (or an earlier incarnation of this one) can never be read back."""

from __future__ import annotations

from django.db import migrations

CREATE = """
CREATE TABLE hosts_cache_epoch (
    epoch uuid NOT NULL,
    rotated_at timestamptz NOT NULL DEFAULT now(),
    -- one row only
    singleton boolean NOT NULL DEFAULT true PRIMARY KEY CHECK (singleton)
);
INSERT INTO hosts_cache_epoch (epoch) VALUES (gen_random_uuid());
"""


class Migration(migrations.Migration):
    dependencies = [
        ("hosts", "0001_initial"),
    ]

    operations = [
        migrations.RunSQL(CREATE, reverse_sql="DROP TABLE hosts_cache_epoch"),
    ]
