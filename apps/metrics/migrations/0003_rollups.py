"""RollupState (job bookkeeping) and the four rollup tables, partitioned or hypertables like the raw
table (apps/metrics/rollups/storage.py); on TimescaleDB also raw-chunk compression settings."""

from django.db import migrations, models


def install(apps, schema_editor):
    from apps.metrics.rollups import storage

    storage.install(schema_editor.connection)
    storage.enable_raw_compression(schema_editor.connection)


def uninstall(apps, schema_editor):
    from apps.metrics.rollups import storage

    storage.disable_raw_compression(schema_editor.connection)
    storage.uninstall(schema_editor.connection)


class Migration(migrations.Migration):

    dependencies = [
        ('metrics', '0002_sample_storage'),
    ]

    operations = [
        migrations.CreateModel(
            name='RollupState',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('tier', models.CharField(max_length=8, unique=True)),
                ('watermark', models.DateTimeField(blank=True, null=True)),
                ('dirty_from', models.DateTimeField(blank=True, null=True)),
                ('dirty_to', models.DateTimeField(blank=True, null=True)),
                ('last_run_at', models.DateTimeField(blank=True, null=True)),
                ('last_duration_ms', models.PositiveIntegerField(default=0)),
                ('rows_written', models.BigIntegerField(default=0, help_text='Rows inserted or changed by the last run.')),
                ('last_summary', models.CharField(blank=True, default='', max_length=300)),
            ],
            options={
                'ordering': ['id'],
            },
        ),
        migrations.RunPython(install, uninstall),
    ]
