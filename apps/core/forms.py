"""Form fields the pages share."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

#: The instants a person may type. Python's datetime ends at years 1 and 9999, so a time near either end
#: cannot be read in a time zone or have a duration added (``0001-01-01T00:00`` in Europe/Berlin,
#: ``9999-12-31T23:59`` plus an hour): refused as a field error instead of an OverflowError later.
EARLIEST = dt.datetime(1970, 1, 1)
LATEST = dt.datetime(9000, 12, 31, 23, 59, 59)


class BoundedDateTimeField(forms.DateTimeField):
    """A DateTimeField that accepts only times between EARLIEST and LATEST (wall clock, any zone)."""

    default_error_messages = {"out_of_range": f"Enter a time between the years {EARLIEST.year} and {LATEST.year}."}

    def to_python(self, value: Any) -> dt.datetime | None:
        result = super().to_python(value)
        if result is not None and not EARLIEST <= result.replace(tzinfo=None) <= LATEST:
            raise ValidationError(self.error_messages["out_of_range"], code="out_of_range")
        return result
