"""Set-based compare-and-set on alert rows (and plain set-based writes of locked rows): many guarded
writes in one statement per shape.

``_cas`` in the lifecycle writes one row (``filter(pk=…, state=old).update(…)``). A chunk of a thousand
rules makes thousands of such writes per tick, so they are grouped by shape (the columns written and the
columns guarded) and each shape becomes one ``UPDATE … FROM unnest(…) … RETURNING id``: a row whose state
(or guarded severity) moved since it was read is not written and not returned -- the same guarantee as
the single-row compare-and-set, so two workers still never make one transition twice."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import ForeignKey, JSONField, Model
from django.utils import timezone

from apps.alerts.models import Alert


@dataclass(slots=True)
class Change:
    """Write ``fields`` to row ``pk`` only if its state is still ``old`` (None: no state guard, for rows the
    caller holds locked) and every ``guard`` column still holds its value."""

    pk: int
    old: str | None
    fields: Mapping[str, Any]
    guard: Mapping[str, Any]


def _column(model: type[Model], name: str) -> tuple[str, str, bool]:
    """(column, PostgreSQL array element type, is JSON) of a field name."""
    field = model._meta.get_field(name)
    if isinstance(field, ForeignKey):
        return field.column, field.target_field.rel_db_type(connection), False
    if isinstance(field, JSONField):
        return field.column, "text", True
    return field.column, field.db_type(connection), False


def _value(model: type[Model], name: str, value: Any) -> Any:
    if value is not None and hasattr(value, "pk"):
        return value.pk
    if value is not None and _column(model, name)[2]:
        return json.dumps(value)
    return value


def apply(changes: Sequence[Change], model: type[Model] = Alert, *, skip_locked: bool = False) -> set[int]:
    """Run the changes; return the pks that were written (the others' guards failed). One statement per
    distinct (fields, guard) shape; ``updated_at`` is set on every written row. ``skip_locked``: a row
    another transaction holds locked is skipped instead of waited for -- for writes outside a rule lock
    (pure refreshes), which then never wait in a lock cycle with a locked transition (that row is being
    changed anyway, so this evaluation's view of it is stale)."""
    shapes: dict[tuple[tuple[str, ...], tuple[str, ...], bool], list[Change]] = {}
    for change in changes:
        key = (tuple(sorted(change.fields)), tuple(sorted(change.guard)), change.old is None)
        shapes.setdefault(key, []).append(change)
    written: set[int] = set()
    table = model._meta.db_table
    for (names, guards, unguarded), members in shapes.items():
        columns = [_column(model, name) for name in names]
        guard_columns = [_column(model, name) for name in guards]
        arrays: list[str] = ["%s::bigint[]", "%s::text[]"]
        aliases: list[str] = ["id", "old"]
        params: list[Any] = [[c.pk for c in members], [c.old for c in members]]
        sets: list[str] = []
        for index, (name, (column, kind, is_json)) in enumerate(zip(names, columns, strict=True)):
            arrays.append(f"%s::{kind}[]")
            aliases.append(f"f{index}")
            params.append([_value(model, name, c.fields[name]) for c in members])
            sets.append(f"{column} = v.f{index}" + ("::jsonb" if is_json else ""))
        where = ["a.id = v.id"] if unguarded else ["a.id = v.id", "a.state = v.old"]
        for index, (name, (column, kind, is_json)) in enumerate(zip(guards, guard_columns, strict=True)):
            arrays.append(f"%s::{kind}[]")
            aliases.append(f"g{index}")
            params.append([_value(model, name, c.guard[name]) for c in members])
            where.append(f"a.{column} IS NOT DISTINCT FROM v.g{index}" + ("::jsonb" if is_json else ""))
        if skip_locked:
            where.append(f"a.id IN (SELECT id FROM {table} WHERE id = ANY(%s) "  # noqa: S608 -- model name
                         "FOR NO KEY UPDATE SKIP LOCKED)")
            params.append([c.pk for c in members])
        sets.append("updated_at = %s")
        sql = (f"UPDATE {table} AS a SET {', '.join(sets)} "  # noqa: S608 -- names from the model, values bound
               f"FROM unnest({', '.join(arrays)}) AS v({', '.join(aliases)}) "
               f"WHERE {' AND '.join(where)} RETURNING a.id")
        # unnest's arrays come first in the text, the SET's updated_at before them: order the params so.
        with connection.cursor() as cursor:
            cursor.execute(sql, [timezone.now(), *params])
            written.update(row[0] for row in cursor.fetchall())
    return written
