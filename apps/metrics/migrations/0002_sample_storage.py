"""Raw samples table: a TimescaleDB hypertable or a natively partitioned table, chosen here once
(setting FIBERSTACK_TIMESCALEDB; see apps/metrics/storage). Plain SQL, not django-timescaledb."""

from django.db import migrations


def install(apps, schema_editor):
    from apps.metrics import storage

    storage.install(schema_editor.connection)


def uninstall(apps, schema_editor):
    from apps.metrics import storage

    storage.uninstall(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("metrics", "0001_initial")]

    operations = [migrations.RunPython(install, uninstall)]
