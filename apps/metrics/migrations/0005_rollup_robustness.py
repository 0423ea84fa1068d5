"""Rollups that data cannot stop: ``count`` as bigint on every rollup tier (and its partitions or
chunks), the quarantine of series ranges that still fail, and the invalidation log of late data
(apps/metrics/rollups/{storage,quarantine,invalidation}.py)."""

import django.db.models.deletion
import django.db.models.functions.datetime
from django.db import migrations, models


def count_bigint(apps, schema_editor):
    from apps.metrics.rollups import storage

    storage.set_count_type("bigint", schema_editor.connection)


def count_integer(apps, schema_editor):
    from apps.metrics.rollups import storage

    storage.set_count_type("integer", schema_editor.connection)


class Migration(migrations.Migration):

    dependencies = [
        ('metrics', '0004_sample_unique_series_time'),
    ]

    operations = [
        migrations.RunPython(count_bigint, count_integer),
        migrations.CreateModel(
            name='RollupInvalidation',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('lo', models.DateTimeField()),
                ('hi', models.DateTimeField()),
                ('created_at', models.DateTimeField(db_default=django.db.models.functions.datetime.Now())),
            ],
            options={
                'indexes': [models.Index(fields=['lo'], name='metrics_rollupinv_lo')],
            },
        ),
        migrations.CreateModel(
            name='RollupQuarantine',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('tier', models.CharField(max_length=8)),
                ('bucket_from', models.DateTimeField()),
                ('bucket_to', models.DateTimeField()),
                ('error', models.TextField()),
                ('first_seen_at', models.DateTimeField()),
                ('last_seen_at', models.DateTimeField()),
                ('attempts', models.PositiveIntegerField(default=1)),
                ('resolved_at', models.DateTimeField(blank=True, null=True)),
                ('series', models.ForeignKey(db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='metrics.series')),
            ],
            options={
                'ordering': ['-last_seen_at'],
                'indexes': [models.Index(condition=models.Q(('resolved_at__isnull', True)), fields=['tier', 'series', 'bucket_from'], name='metrics_rollupq_open')],
            },
        ),
    ]
