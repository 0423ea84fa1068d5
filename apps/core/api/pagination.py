"""Cursor pagination by creation time: stable under concurrent inserts, no COUNT(*) on big tables."""

from __future__ import annotations

from rest_framework import pagination


class CursorPagination(pagination.CursorPagination):
    ordering = "-created_at"
    page_size_query_param = "page_size"
    max_page_size = 1000
