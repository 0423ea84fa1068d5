"""The table of compressed raw chunks (``apps.metrics.storage.compressed``), on both backends: on
TimescaleDB it stays empty (the hypertable compresses natively) but every raw reader selects from it, so
the SQL is one. Going back drops it: migrate back only after decompressing what you want to keep."""

from django.db import migrations


def create(apps, schema_editor):
    from apps.metrics.storage import compressed

    with schema_editor.connection.cursor() as cursor:
        compressed.create_table(cursor)


def drop(apps, schema_editor):
    from apps.metrics.storage import compressed

    with schema_editor.connection.cursor() as cursor:
        compressed.drop_table(cursor)


class Migration(migrations.Migration):
    dependencies = [("metrics", "0006_owner_ddl_functions")]

    operations = [migrations.RunPython(create, drop)]
