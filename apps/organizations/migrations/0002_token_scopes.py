"""Split the token scopes: ``write`` becomes ``ingest`` (push only), ``read`` stays, ``config`` is new.

Backwards, ``ingest`` goes back to ``write``; a ``config`` token becomes ``read`` (the old schema has no
config scope, and ``write`` would have let it push data it never could)."""

from __future__ import annotations

from typing import Any

from django.db import migrations, models

FORWARD = {"write": "ingest"}
BACKWARD = {"ingest": "write", "config": "read"}


def _rename(mapping: dict[str, str]) -> Any:
    def run(apps: Any, schema_editor: Any) -> None:
        tokens = apps.get_model("organizations", "AgentToken").objects.using(schema_editor.connection.alias)
        for old, new in mapping.items():
            tokens.filter(scope=old).update(scope=new)

    return run


class Migration(migrations.Migration):
    dependencies = [("organizations", "0001_initial")]

    operations = [
        migrations.AlterField(
            model_name="agenttoken",
            name="scope",
            field=models.CharField(
                choices=[("ingest", "Ingest (push metrics)"), ("read", "Read"), ("config", "Read and configure")],
                default="ingest", max_length=8,
            ),
        ),
        migrations.RunPython(_rename(FORWARD), _rename(BACKWARD)),
    ]
