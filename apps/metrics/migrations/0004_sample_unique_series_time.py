"""One raw sample per (series, time): existing duplicates (retried batches stored twice) are removed, one
kept, and the read index becomes unique, so the ingest path (apps/metrics/storage/write.py) can make the
later write win. Backwards only the index loses its uniqueness; removed duplicates stay removed."""

from django.db import migrations


def make_unique(apps, schema_editor):
    from apps.metrics.storage import unique

    unique.make_unique(schema_editor.connection)


def make_non_unique(apps, schema_editor):
    from apps.metrics.storage import unique

    unique.make_non_unique(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("metrics", "0003_rollups")]

    operations = [migrations.RunPython(make_unique, make_non_unique)]
