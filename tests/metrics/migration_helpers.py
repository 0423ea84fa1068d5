"""Finding a migration by what it does rather than by its number (numbers change when branches merge)."""

from __future__ import annotations

from django.db.migrations.loader import MigrationLoader


def migration_and_parent(app: str, suffix: str) -> tuple[str, str]:
    """(name, name of its parent in the same app) of ``app``'s migration whose name ends with ``suffix``."""
    graph = MigrationLoader(None, ignore_no_migrations=True).graph
    [key] = [key for key in graph.nodes if key[0] == app and key[1].endswith(suffix)]
    [parent] = [node.key[1] for node in graph.node_map[key].parents if node.key[0] == app]
    return key[1], parent
