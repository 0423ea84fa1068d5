"""The tables of compressed rollup partitions (``apps.metrics.rollups.compressed``), one per tier, on both
backends: on TimescaleDB they stay empty but every rollup reader selects from them, so the SQL is one; there
the rollup hypertables are declared compressible instead (native compression, like raw chunks).
Going back drops the tables (migrate back only after the partitions you want to keep are back as rows) and,
on TimescaleDB, decompresses the rollup chunks."""

from django.db import migrations


def create(apps, schema_editor):
    from apps.metrics.rollups import compressed, storage

    with schema_editor.connection.cursor() as cursor:
        compressed.create_tables(cursor)
    storage.enable_rollup_compression(schema_editor.connection)


def drop(apps, schema_editor):
    from apps.metrics.rollups import compressed, storage

    storage.disable_rollup_compression(schema_editor.connection)
    with schema_editor.connection.cursor() as cursor:
        compressed.drop_tables(cursor)


class Migration(migrations.Migration):
    dependencies = [("metrics", "0007_compressed_raw_chunks")]

    operations = [migrations.RunPython(create, drop)]
