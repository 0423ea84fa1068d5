"""The retention overrides model, and the partitioned tables of entries and events (plain SQL, see
apps/logs/storage.py), created with the backend the metrics raw table chose."""

import django.core.validators
import django.db.models.deletion
from django.db import migrations, models


def install(apps, schema_editor):
    from apps.logs import storage

    storage.install(schema_editor.connection)


def uninstall(apps, schema_editor):
    from apps.logs import storage

    storage.uninstall(schema_editor.connection)


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("organizations", "0001_initial"),
        ("metrics", "0002_sample_storage"),
    ]

    operations = [
        migrations.CreateModel(
            name="LogRetention",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("logs_days", models.PositiveIntegerField(blank=True, null=True, validators=[
                    django.core.validators.MinValueValidator(1), django.core.validators.MaxValueValidator(3650)])),
                ("events_days", models.PositiveIntegerField(blank=True, null=True, validators=[
                    django.core.validators.MinValueValidator(1), django.core.validators.MaxValueValidator(3650)])),
                ("organization", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE,
                                                      related_name="log_retention",
                                                      to="organizations.organization")),
            ],
        ),
        migrations.RunPython(install, uninstall),
    ]
