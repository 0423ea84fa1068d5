"""The migrated schema against the Citus plan (``fiberstack/citus_layout.py``, docs/scaling.md): every
table is classified, distributed tables keep Citus's rules (distribution column present and NOT NULL, in
every unique key; foreign keys inside a co-location group on the distribution column, or to reference
tables), reference and local tables point at no distributed table. Today's violations are listed in
``EXCEPTIONS``; a new one fails here, and so does a listed one that is gone (the list only shrinks)."""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path

import pytest
from django.db import connection

from fiberstack import citus_layout as layout

pytestmark = pytest.mark.django_db
DOC = Path(__file__).resolve().parents[2] / "docs" / "scaling.md"


def _fetch(sql: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def schema_tables() -> set[str]:
    """Tables and partitioned parents of the schema; partitions (and TimescaleDB chunks, in their own
    schema) belong to their parent."""
    return {name for (name,) in _fetch(
        "SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace "
        "AND relkind IN ('r', 'p') AND NOT relispartition")}


def columns() -> dict[str, dict[str, bool]]:
    """table -> column -> NOT NULL."""
    out: dict[str, dict[str, bool]] = {}
    for table, column, not_null in _fetch(
            "SELECT c.relname, a.attname, a.attnotnull FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p') "
            "AND a.attnum > 0 AND NOT a.attisdropped"):
        out.setdefault(table, {})[column] = not_null
    return out


def unique_keys() -> list[tuple[str, str, list[str]]]:
    """(table, 'primary key' | 'unique', key columns) of every unique index, constraint or not
    (an expression column shows as 'expression')."""
    rows = _fetch(
        """
        SELECT c.relname, i.indisprimary,
               array(SELECT coalesce(a.attname, 'expression') FROM unnest(i.indkey[0:i.indnkeyatts - 1])
                     WITH ORDINALITY AS k(attnum, n)
                     LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum ORDER BY k.n)
        FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
        WHERE i.indisunique AND c.relnamespace = current_schema()::regnamespace AND NOT c.relispartition
        """
    )
    return [(table, "primary key" if primary else "unique", list(cols)) for table, primary, cols in rows]


def foreign_keys() -> list[tuple[str, list[str], str, list[str]]]:
    rows = _fetch(
        """
        SELECT src.relname, array(SELECT a.attname FROM unnest(f.conkey) WITH ORDINALITY k(n, o)
                                  JOIN pg_attribute a ON a.attrelid = f.conrelid AND a.attnum = k.n ORDER BY k.o),
               dst.relname, array(SELECT a.attname FROM unnest(f.confkey) WITH ORDINALITY k(n, o)
                                  JOIN pg_attribute a ON a.attrelid = f.confrelid AND a.attnum = k.n ORDER BY k.o)
        FROM pg_constraint f JOIN pg_class src ON src.oid = f.conrelid JOIN pg_class dst ON dst.oid = f.confrelid
        WHERE f.contype = 'f' AND src.relnamespace = current_schema()::regnamespace AND NOT src.relispartition
        """
    )
    return [(src, list(cols), dst, list(ref)) for src, cols, dst, ref in rows]


def violations() -> set[str]:
    """Every place the migrated schema breaks the rules for the tables as classified."""
    found: set[str] = set()
    cols = columns()
    for table in schema_tables():
        spec = layout.distributed(table)
        if spec is None:
            continue
        if spec.column not in cols[table]:
            found.add(f"{table}: no column {spec.column}")
        elif not cols[table][spec.column]:
            found.add(f"{table}: {spec.column} is nullable")
    for table, kind, key in unique_keys():
        spec = layout.distributed(table)
        if spec is not None and spec.column not in key:
            found.add(f"{table}: {kind} ({', '.join(key)})")
    for src, key, dst, ref in foreign_keys():
        what = f"{src}: foreign key ({', '.join(key)}) -> {dst}"
        src_kind, dst_kind = layout.classification(src), layout.classification(dst)
        if src_kind == "distributed" and dst_kind == "distributed":
            a, b = layout.distributed(src), layout.distributed(dst)
            assert a is not None and b is not None
            if a.group != b.group or (a.column, b.column) not in zip(key, ref, strict=True):
                found.add(what)
        elif (src_kind in ("distributed", "reference") and dst_kind != "reference") or (
                src_kind == "local" and dst_kind == "distributed"):
            found.add(what)  # distributed -> local, reference -> non-reference, local -> distributed
    return found


def test_every_table_of_the_schema_is_classified_once_and_every_classified_table_exists() -> None:
    kinds = [set(layout.DISTRIBUTED), set(layout.REFERENCE), set(layout.LOCAL)]
    assert not (kinds[0] & kinds[1] or kinds[0] & kinds[2] or kinds[1] & kinds[2]), "a table in two kinds"
    tables = schema_tables()
    assert sorted(t for t in tables if layout.classification(t) is None) == [], \
        "classify new tables in fiberstack/citus_layout.py"
    assert sorted(set().union(*kinds) - tables) == [], "classified in fiberstack/citus_layout.py, but missing"
    assert [p for p in layout.DISTRIBUTED_PATTERNS if not any(fnmatchcase(t, p) for t in tables)] == []


def test_the_schema_keeps_the_citus_rules_except_the_listed_exceptions() -> None:
    found = violations()
    allowed = layout.allowed_violations()
    assert sorted(found - allowed) == [], "new Citus rule violations (see docs/scaling.md)"
    assert sorted(allowed - found) == [], "fixed: remove these from EXCEPTIONS in fiberstack/citus_layout.py"


def test_a_new_violation_would_be_caught() -> None:
    """The check can fail: a unique key without organization_id on a tenant table, a foreign key from a
    reference table to a distributed one (made inside the test's transaction, rolled back after)."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE UNIQUE INDEX citus_probe ON hosts_host (name)")
        cursor.execute("ALTER TABLE auth_user ADD COLUMN citus_probe_host integer REFERENCES hosts_host (id)")
    new = violations() - layout.allowed_violations()
    assert new == {"hosts_host: unique (name)", "auth_user: foreign key (citus_probe_host) -> hosts_host"}


def test_docs_scaling_shows_the_classification_the_test_checks() -> None:
    assert layout.render_markdown() in DOC.read_text(), "regenerate the table in docs/scaling.md from " \
                                                         "fiberstack.citus_layout.render_markdown()"
