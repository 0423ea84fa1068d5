"""Forms of the alerting pages. They only parse what a person types (``key=value`` lines, comma lists,
local times in a zone); every rule of what is valid lives in the services, whose ValidationErrors are
put back on these fields by ``apps.alerts.views.common.add_service_errors``."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django import forms
from django.core import validators
from django.core.exceptions import ValidationError

from apps.alerts.models import AlertRule, NotificationChannel
from apps.core.forms import BoundedDateTimeField
from apps.hosts.models import Host, Service

LOCAL_INPUT_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"]
DURATION_CHOICES = [("900", "15 min"), ("3600", "1 h"), ("7200", "2 h"), ("14400", "4 h"), ("28800", "8 h"),
                    ("86400", "1 day"), ("259200", "3 days"), ("604800", "1 week")]
_SPLIT = re.compile(r"[\s,]+")


class LocalDateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="%Y-%m-%dT%H:%M", **kwargs)


def local_datetime_field(**kwargs: Any) -> forms.DateTimeField:
    return BoundedDateTimeField(widget=LocalDateTimeInput(), input_formats=LOCAL_INPUT_FORMATS, **kwargs)


def _no_nul(value: Any) -> None:
    """CharField's own NUL check runs on the cleaned value, which is a dict or list for the two fields below
    (and a NUL inside one reached PostgreSQL's jsonb as a 500): checked on the typed text instead."""
    if isinstance(value, str):
        validators.ProhibitNullCharactersValidator()(value)


class MappingField(forms.CharField):
    """``key=value`` (or ``key: value``) one a line <-> a dict of strings."""

    widget = forms.Textarea(attrs={"rows": 3})

    def __init__(self, *, separator: str = "=", **kwargs: Any) -> None:
        self.separator = separator
        kwargs.setdefault("required", False)
        super().__init__(strip=False, **kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, dict):
            joiner = ": " if self.separator == ":" else "="
            return "\n".join(f"{key}{joiner}{item}" for key, item in value.items())
        return value

    def to_python(self, value: Any) -> dict[str, str]:
        _no_nul(value)
        result: dict[str, str] = {}
        for number, line in enumerate((value or "").splitlines(), start=1):
            if not line.strip():
                continue
            key, sep, item = line.partition(self.separator)
            if not sep or not key.strip():
                raise ValidationError(f"Line {number}: expected name{self.separator}value, got {line.strip()[:60]!r}.")
            result[key.strip()] = item.strip()
        return result


class ListField(forms.CharField):
    """Comma- or space-separated names <-> a list."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        return ", ".join(value) if isinstance(value, list | tuple) else value

    def to_python(self, value: Any) -> list[str]:
        _no_nul(value)
        return [item for item in _SPLIT.split(value or "") if item]


# --- rules -------------------------------------------------------------------------------------------

RULE_FORM_FIELDS = (
    "name", "description", "enabled", "kind", "metric", "label_matchers", "host_environment", "reducer",
    "window_seconds", "comparator", "critical", "warning", "for_seconds", "resolve_threshold",
    "keep_firing_for_seconds", "absence_seconds", "anomaly_method", "anomaly_k", "training_seconds", "seasonal",
    "summary_template", "description_template", "repeat_interval_seconds", "evaluation_interval_seconds",
)


class RuleForm(forms.Form):
    """Every setting of a rule; the service validates the combination (thresholds against the
    comparator, the kind's required fields, matchers PostgreSQL accepts)."""

    host_names = ListField(label="Hosts", help_text="only these host names, comma-separated (empty: all hosts)")
    host_tags = MappingField(help_text="tag=value, one a line; every one must match the host's tags")
    labels = MappingField(label="Alert labels", help_text="name=value, one a line; added to every alert")
    group_by = ListField(help_text="label names, comma-separated; alerts sharing them notify as one")
    channels = forms.ModelMultipleChoiceField(queryset=NotificationChannel.objects.none(), required=False,
                                              to_field_name="public_id", widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args: Any, organization: Any, rule: AlertRule | None = None, **kwargs: Any) -> None:
        if rule is not None and "initial" not in kwargs:
            kwargs["initial"] = {**{name: getattr(rule, name) for name in self.service_fields()},
                                 "channels": list(rule.channels.all())}
        super().__init__(*args, **kwargs)
        model_fields = forms.fields_for_model(AlertRule, fields=RULE_FORM_FIELDS)
        self.fields = {**model_fields, **self.fields}
        self.fields["label_matchers"].label = "Label matchers"
        self.fields["label_matchers"].help_text = 'query API syntax, e.g. cpu="total",mode!~"idle|iowait"'
        self.fields["label_matchers"].widget = forms.TextInput(attrs={"size": 60})
        self.fields["description"].widget = forms.Textarea(attrs={"rows": 2})
        self.fields["description_template"].widget = forms.Textarea(attrs={"rows": 2})
        self.fields["channels"].queryset = (NotificationChannel.objects.for_org(organization).user_configured()
                                            .order_by("name"))
        if rule is not None and rule.system_key:
            self.fields["kind"].disabled = True

    #: (title, kinds it concerns or "" for all, fields): the form's sections; static/js/alerts.js hides the
    #: sections of other kinds while the kind is chosen (all show without JavaScript).
    FIELDSETS = (
        ("Rule", "", ("name", "description", "enabled", "kind")),
        ("What to watch", "", ("metric", "label_matchers", "host_environment", "host_names", "host_tags")),
        ("Condition", "threshold anomaly", ("reducer", "window_seconds")),
        ("Thresholds", "threshold", ("comparator", "critical", "warning", "resolve_threshold")),
        ("Absence", "absence", ("absence_seconds",)),
        ("Anomaly", "anomaly", ("anomaly_method", "anomaly_k", "training_seconds", "seasonal")),
        ("Timing", "", ("for_seconds", "keep_firing_for_seconds", "evaluation_interval_seconds")),
        ("Notifications", "", ("channels", "labels", "group_by", "repeat_interval_seconds", "summary_template",
                               "description_template")),
    )

    @staticmethod
    def service_fields() -> tuple[str, ...]:
        return (*RULE_FORM_FIELDS, "host_names", "host_tags", "labels", "group_by")

    def fieldsets(self) -> list[tuple[str, str, list[forms.BoundField]]]:
        return [(title, kinds, [self[name] for name in names]) for title, kinds, names in self.FIELDSETS]

    def service_kwargs(self) -> dict[str, Any]:
        data = {name: self.cleaned_data[name] for name in self.service_fields()}
        for name in ("metric", "label_matchers", "host_environment", "summary_template"):
            data[name] = (data[name] or "").strip()
        return data


# --- channels ----------------------------------------------------------------------------------------


class ChannelForm(forms.Form):
    """A webhook (url), Slack incoming webhook (url) or email (address) channel."""

    headers = MappingField(separator=":", help_text="webhook only: Name: value, one a line")

    def __init__(self, *args: Any, channel: NotificationChannel | None = None, **kwargs: Any) -> None:
        if channel is not None and "initial" not in kwargs:
            kwargs["initial"] = {name: getattr(channel, name) for name in self.service_fields()}
        super().__init__(*args, **kwargs)
        model_fields = forms.fields_for_model(NotificationChannel, fields=(
            "name", "kind", "address", "enabled", "rate_limit_per_minute"))
        # A plain text field: the service says what is wrong with a url (and the model's URLField would
        # guess a scheme for one typed without it).
        url = forms.CharField(max_length=2000, required=False, help_text="webhook and Slack: the http(s) url to "
                              "POST to", widget=forms.TextInput(attrs={"size": 60}))
        self.fields = {"name": model_fields["name"], "kind": model_fields["kind"], "url": url,
                       **model_fields, **self.fields}

    @staticmethod
    def service_fields() -> tuple[str, ...]:
        return ("name", "kind", "url", "address", "headers", "enabled", "rate_limit_per_minute")

    def service_kwargs(self) -> dict[str, Any]:
        data = {name: self.cleaned_data[name] for name in self.service_fields()}
        data["url"] = (data["url"] or "").strip()
        return data


# --- silences ----------------------------------------------------------------------------------------


class AlertSilenceForm(forms.Form):
    """Silence one alert from the list or its page: its labels, for a chosen duration."""

    duration = forms.TypedChoiceField(choices=DURATION_CHOICES, coerce=int, initial="3600")
    comment = forms.CharField(max_length=1000, required=False)


class SilenceForm(forms.Form):
    """A silence: matchers in the query API's syntax, from a start (default now, UTC) for a duration or
    until an end."""

    matchers = forms.CharField(max_length=2000, widget=forms.TextInput(attrs={"size": 60}),
                               help_text='e.g. alertname="cpu high",host=~"db-.*"')
    starts_at = local_datetime_field(required=False, label="Starts (UTC)", help_text="empty: now")
    duration = forms.TypedChoiceField(choices=DURATION_CHOICES, coerce=int, initial="3600", required=False)
    ends_at = local_datetime_field(required=False, label="or ends (UTC)", help_text="overrides the duration")
    comment = forms.CharField(max_length=1000, required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not data.get("ends_at") and not data.get("duration") and "duration" not in self.errors:
            self.add_error("duration", "Choose a duration or an end.")
        return data

    def service_kwargs(self, now: dt.datetime) -> dict[str, Any]:
        data = self.cleaned_data
        starts_at = data.get("starts_at") or now
        ends_at = data.get("ends_at") or starts_at + dt.timedelta(seconds=data["duration"])
        return {"matchers": data["matchers"], "starts_at": starts_at if data.get("starts_at") else None,
                "ends_at": ends_at, "comment": data.get("comment", "")}


class MaintenanceWindowForm(forms.Form):
    """A maintenance window; its start and ``until`` are local times of its time zone, as the RRULE is."""

    name = forms.CharField(max_length=200)
    starts_at = local_datetime_field(label="First start (local time)")
    # The column holds seconds in a PostgreSQL integer: more minutes than this were a DataError (a 500).
    duration_minutes = forms.IntegerField(min_value=1, max_value=(2**31 - 1) // 60, label="Duration (minutes)")
    time_zone = forms.CharField(max_length=64, initial="UTC", help_text="IANA name, e.g. Europe/Berlin")
    rrule = forms.CharField(max_length=500, required=False, label="Recurrence (RRULE)",
                            help_text="e.g. FREQ=WEEKLY;BYDAY=SU (empty: one-off)")
    until = local_datetime_field(required=False, label="No start after (local time)")
    hosts = forms.ModelMultipleChoiceField(queryset=Host.objects.none(), required=False, to_field_name="public_id")
    host_tags = MappingField(help_text="tag=value, one a line")
    services = forms.ModelMultipleChoiceField(queryset=Service.objects.none(), required=False,
                                              to_field_name="public_id")
    comment = forms.CharField(max_length=1000, required=False, widget=forms.Textarea(attrs={"rows": 2}))

    #: Service error keys -> form fields.
    SERVICE_NAMES = {"duration": "duration_minutes", "duration_seconds": "duration_minutes"}

    def __init__(self, *args: Any, organization: Any, window: Any = None, **kwargs: Any) -> None:
        if window is not None and "initial" not in kwargs:
            tz = _zone_or_utc(window.time_zone)
            kwargs["initial"] = {
                "name": window.name, "starts_at": window.starts_at.astimezone(tz).replace(tzinfo=None),
                "duration_minutes": max(1, window.duration_seconds // 60), "time_zone": window.time_zone,
                "rrule": window.rrule, "until": window.until.astimezone(tz).replace(tzinfo=None) if window.until
                else None, "hosts": list(window.hosts.all()), "host_tags": window.host_tags,
                "services": list(window.services.all()), "comment": window.comment}
        super().__init__(*args, **kwargs)
        self.fields["hosts"].queryset = Host.objects.for_org(organization).order_by("name")
        self.fields["services"].queryset = Service.objects.for_org(organization).select_related(
            "host").order_by("host__name", "name")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        try:
            tz = ZoneInfo(data.get("time_zone") or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            self.add_error("time_zone", f"Unknown time zone {data.get('time_zone')!r}: use an IANA name such as "
                                        "Europe/Berlin.")
            return data
        # The browser's datetime-local carries no zone: the typed wall time is the window's own zone.
        for name in ("starts_at", "until"):
            if data.get(name) is not None:
                data[name] = data[name].replace(tzinfo=None).replace(tzinfo=tz, fold=0)
        return data

    def service_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {"name": data["name"], "starts_at": data["starts_at"], "duration_seconds": data["duration_minutes"] * 60,
                "time_zone": data["time_zone"], "rrule": data.get("rrule") or "", "until": data.get("until"),
                "hosts": list(data["hosts"]), "host_tags": data["host_tags"], "services": list(data["services"]),
                "comment": data.get("comment") or ""}


def _zone_or_utc(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")
