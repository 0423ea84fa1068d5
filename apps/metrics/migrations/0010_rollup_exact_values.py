"""Small rollup buckets keep their values: ``exact_values float8[]`` on every tier (the sketch columns become
nullable: a bucket holds one or the other) and a nullable blob of kept values in the compressed rollup chunks
(``apps.metrics.sketch.EXACT_MAX_COUNT``). Forward changes the catalogue only; backwards turns every kept
bucket, in rows and chunks, into the sketch the rollup would have built, then drops the columns."""

from django.db import migrations


def forward(apps, schema_editor):
    from apps.metrics.rollups import compressed, storage

    storage.add_exact_values(schema_editor.connection)
    with schema_editor.connection.cursor() as cursor:
        compressed.add_exact_blob(cursor)


def backward(apps, schema_editor):
    from apps.metrics.rollups import compressed, storage

    with schema_editor.connection.cursor() as cursor:
        compressed.remove_exact_blob(cursor)
    storage.remove_exact_values(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("metrics", "0009_raw_index_ascending")]

    operations = [migrations.RunPython(forward, backward)]
