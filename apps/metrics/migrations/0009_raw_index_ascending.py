"""The raw samples' unique (series_id, time) index in ascending time order instead of ``time DESC``: ingest
copies each request's rows sorted by (series, time), so every row lands just after the previous one and the
B-tree's pages stay full (32 instead of 48 bytes of index per row, slightly less PostgreSQL CPU per row:
``common.create_raw_index``). The index is rebuilt on every partition (or chunk), which takes a while on a
large raw table and blocks ingest meanwhile; going back rebuilds the descending form."""

from django.db import migrations


def rebuild(*, descending: bool):
    def run(apps, schema_editor):
        from apps.metrics.storage.common import create_raw_index, drop_raw_index

        with schema_editor.connection.cursor() as cursor:
            drop_raw_index(cursor)
            create_raw_index(cursor, unique=True, descending=descending)

    return run


class Migration(migrations.Migration):
    dependencies = [("metrics", "0008_compressed_rollup_chunks")]

    operations = [migrations.RunPython(rebuild(descending=False), rebuild(descending=True))]
