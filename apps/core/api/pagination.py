"""Cursor pagination by creation time: stable under concurrent inserts, no COUNT(*) on big tables."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Model, QuerySet
from rest_framework import pagination
from rest_framework.exceptions import NotFound, ValidationError

from apps.core.params import BadParameter, page_param


class CursorPagination(pagination.CursorPagination):
    """A ``cursor`` the list cannot read is a 400 naming the parameter (the shape of ``bool_param``'s), not
    DRF's 404 "Invalid cursor" (the list exists; the parameter is what is wrong), nor the first page
    (``?cursor=%%%`` decodes to nothing), nor a 400 about a date that names no parameter (``p=2026``)."""

    ordering = "-created_at"
    page_size_query_param = "page_size"
    max_page_size = 1000
    _model: type[Model] | None = None

    def paginate_queryset(self, queryset: QuerySet[Any], request: Any, view: Any = None) -> list[Any] | None:
        self._model = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def get_page_size(self, request: Any) -> int | None:
        """``?page_size=`` from 1 (above ``max_page_size`` it is cut to it); not a whole number from 1 is a
        400 naming it -- DRF quietly used the default page size instead."""
        if self.page_size_query_param:
            try:
                page_param(request.query_params, self.page_size_query_param)  # the pages' check of a number
            except BadParameter as exc:
                raise ValidationError({exc.name: [f"{exc.name} {exc.why}"]}) from None
        return super().get_page_size(request)

    def decode_cursor(self, request: Any) -> pagination.Cursor | None:
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise self._invalid() from None
        if cursor is None:
            return None
        if cursor == pagination.Cursor(offset=0, reverse=False, position=None):
            raise self._invalid()  # never handed out: the first page's links carry no cursor
        if cursor.position is not None:
            self._check_position(cursor.position)
        return cursor

    def _check_position(self, position: str) -> None:
        """The position must be a value of the ordering field, or filtering by it fails in the ORM."""
        name = self.ordering[0].lstrip("-")
        if self._model is None or "__" in name:
            return
        try:
            field = self._model._meta.get_field(name)
        except FieldDoesNotExist:
            return
        try:
            field.to_python(position)
        except (DjangoValidationError, ValueError, TypeError, OverflowError):
            raise self._invalid() from None

    def _invalid(self) -> ValidationError:
        name = self.cursor_query_param
        return ValidationError({name: [
            f"{name} is not a cursor this list handed out: pass the next or previous link's cursor unchanged."]})
