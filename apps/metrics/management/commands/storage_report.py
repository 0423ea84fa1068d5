"""``manage.py storage_report``: per storage tier (raw rows, compressed raw chunks, 1m, 5m, 1h, 1d, logs,
events) its rows, partitions or chunks, bytes, bytes per raw value represented, compression ratio and
oldest and newest data -- the same figures as the admin's storage page (``apps.metrics.storage.report``)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from apps.metrics.storage.report import COLUMNS, build_report, display_rows


def format_table(header: tuple[str, ...], rows: list[list[str]]) -> str:
    """Plain aligned columns: text left, numbers right (a cell starting with a digit or '-')."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: list[str] | tuple[str, ...]) -> str:
        parts = []
        for i, cell in enumerate(cells):
            numeric = i >= 2 and (cell[:1].isdigit() or cell == "-")
            parts.append(cell.rjust(widths[i]) if numeric else cell.ljust(widths[i]))
        return "  ".join(parts).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(row) for row in rows)])


class Command(BaseCommand):
    help = "Rows, bytes, bytes per raw value, compression ratio and time range of every storage tier."

    def handle(self, *args: Any, **options: Any) -> None:
        report = build_report()
        self.stdout.write(f"storage backend: {report.backend}")
        self.stdout.write(format_table(COLUMNS, display_rows(report)))
        self.stdout.write(f"total: {report.total_bytes:,} bytes")
