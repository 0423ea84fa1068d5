"""The SECURITY DEFINER functions through which the app role creates and drops partitions and
compresses or drops chunks (apps/metrics/storage/ddl.py, docs/database-roles.md).

Databases installed from now on get them from migration 0002 (``storage.install`` creates them before
the first partition); this one adds them to databases installed before they existed. Going back it
leaves them: they belong to the storage install, and 0002's reverse drops them with the tables."""

from django.db import migrations


def install_functions(apps, schema_editor):
    from apps.metrics.storage import ddl

    with schema_editor.connection.cursor() as cursor:
        ddl.install(cursor)


class Migration(migrations.Migration):
    dependencies = [("metrics", "0005_rollup_robustness")]

    operations = [migrations.RunPython(install_functions, migrations.RunPython.noop)]
