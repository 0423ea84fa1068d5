"""Database plumbing shared by the apps: per-request limits on how long a statement may run."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import OperationalError, connection, transaction
from psycopg import errors as pg_errors


@contextmanager
def statement_timeout(milliseconds: int) -> Iterator[None]:
    """Run the block in a transaction whose statements PostgreSQL cancels after ``milliseconds``.

    The limit is set with ``set_config(..., is_local => true)``, i.e. ``SET LOCAL``: it ends with the
    transaction (or the savepoint, when rolled back), so a pooled connection never hands it to the next
    request. Inside an outer transaction the previous value is put back on the way out, so the rest of
    that transaction is not limited by it. ``0`` or less means no limit and no transaction."""
    if milliseconds <= 0:
        yield
        return
    nested = connection.in_atomic_block
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('statement_timeout'), set_config('statement_timeout', %s, true)",
                           [f"{int(milliseconds)}ms"])
            previous = cursor.fetchone()[0]
        yield
        if nested:
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('statement_timeout', %s, true)", [previous])


def is_statement_timeout(exc: BaseException) -> bool:
    """True for PostgreSQL's "canceling statement due to statement timeout" (SQLSTATE 57014)."""
    return isinstance(exc, OperationalError) and isinstance(exc.__cause__, pg_errors.QueryCanceled)
