"""The on-call page's override form. Times are entered in the chosen schedule's zone (the zone the
calendar shows), because that is how people say "cover me Saturday 09:00 to 18:00"."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.contrib.auth import get_user_model

from apps.core.forms import BoundedDateTimeField
from apps.escalation import oncall
from apps.escalation.models import OnCallSchedule
from apps.organizations.models import Membership


class OverrideForm(forms.Form):
    """Who covers which schedule from when to when (``datetime-local`` inputs, schedule time)."""

    schedule = forms.ModelChoiceField(queryset=OnCallSchedule.objects.none(), to_field_name="public_id")
    user = forms.ModelChoiceField(queryset=get_user_model().objects.none(), label="Who covers")
    start = BoundedDateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
                                input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"])
    end = BoundedDateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
                              input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"])

    def __init__(self, *args: Any, organization: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["schedule"].queryset = OnCallSchedule.objects.for_org(organization).order_by("name")  # type: ignore[attr-defined]
        member_ids = Membership.objects.filter(organization=organization, user__is_active=True).values("user_id")
        self.fields["user"].queryset = get_user_model().objects.filter(  # type: ignore[attr-defined]
            pk__in=member_ids).order_by("username")
        self.fields["user"].label_from_instance = lambda user: user.get_username()  # type: ignore[attr-defined]

    def _local(self, value: dt.datetime, schedule: OnCallSchedule) -> dt.datetime:
        """The form's naive wall-clock time read in the schedule's zone (the module's DST rule)."""
        naive = value.replace(tzinfo=None) if value.tzinfo is not None else value
        return oncall.local_to_instant(naive, oncall.zone(schedule.time_zone))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        schedule = data.get("schedule")
        if schedule is not None and data.get("start") is not None and data.get("end") is not None:
            data["start"] = self._local(data["start"], schedule)
            data["end"] = self._local(data["end"], schedule)
            if data["end"] <= data["start"]:
                self.add_error("end", "An override must end after it starts.")
        return data
