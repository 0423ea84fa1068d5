"""What a chart widget is and the one place it is validated. Pages (a form per widget), the API and the
model's ``clean`` all go through ``WidgetForm``, and label matchers through the metrics read package's own
parser, so a widget saved anywhere is one the read API accepts."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from apps.metrics.read.params import AGGS, QueryError
from apps.metrics.read.select import parse_matchers

#: The ranges a widget (or the page's ?range=) may show, in seconds (the chart's range buttons).
RANGES: dict[str, int] = {"1h": 3600, "6h": 21600, "24h": 86400, "7d": 604800, "30d": 2592000}
DEFAULT_RANGE = "1h"
GRID_COLUMNS = 12
MAX_WIDGETS = 50
_METRIC_RE = re.compile(r"[A-Za-z_:][A-Za-z0-9_:.]*")


class WidgetForm(forms.Form):
    """One chart widget: ``metric`` filtered by ``labels`` (``job="node",env=~"prod.*"``), ``agg`` per step
    over ``range``; ``width`` in twelfths of the page."""

    title = forms.CharField(max_length=100, required=False)
    metric = forms.CharField(max_length=200)
    labels = forms.CharField(max_length=500, required=False, help_text='e.g. env="prod",instance=~"web-.*"')
    agg = forms.ChoiceField(choices=[(a, a) for a in AGGS], initial="avg")
    range = forms.ChoiceField(choices=[(r, r) for r in RANGES], initial=DEFAULT_RANGE)
    width = forms.IntegerField(min_value=1, max_value=GRID_COLUMNS, initial=6)

    def clean_metric(self) -> str:
        metric = self.cleaned_data["metric"].strip()
        if not _METRIC_RE.fullmatch(metric):
            raise ValidationError("A metric name: letters, digits, _ and :, not starting with a digit.")
        return metric

    def clean_labels(self) -> str:
        labels = self.cleaned_data["labels"].strip()
        try:
            parse_matchers(labels)
        except QueryError as exc:
            raise ValidationError(str(exc)) from None
        return labels


WIDGET_FIELDS: tuple[str, ...] = tuple(WidgetForm.base_fields)


def clean_widget(raw: Any) -> dict[str, Any]:
    """One widget's JSON -> its normalised dict; ValidationError keyed by field name otherwise."""
    if not isinstance(raw, dict):
        raise ValidationError({"widget": ["Each widget is an object with metric, labels, agg, range, title, width."]})
    errors: dict[str, list[str]] = {name: ["Unknown widget field."] for name in sorted(set(raw) - set(WIDGET_FIELDS))}
    initial = {name: field.initial for name, field in WidgetForm.base_fields.items() if field.initial is not None}
    form = WidgetForm(data={**initial, **{k: "" if v is None else v for k, v in raw.items() if k in WIDGET_FIELDS}})
    if not form.is_valid():
        errors.update({field: list(messages) for field, messages in form.errors.items()})
    if errors:
        raise ValidationError(errors)
    return {name: form.cleaned_data[name] for name in WIDGET_FIELDS}


def clean_widgets(raw: Any) -> list[dict[str, Any]]:
    """A dashboard's widget list, in display order; errors as ``{"<index>": {field: [messages]}}``."""
    if not isinstance(raw, list):
        raise ValidationError("A list of widgets.")
    if len(raw) > MAX_WIDGETS:
        raise ValidationError(f"At most {MAX_WIDGETS} widgets.")
    cleaned: list[dict[str, Any]] = []
    errors: dict[str, Any] = {}
    for index, item in enumerate(raw):
        try:
            cleaned.append(clean_widget(item))
        except ValidationError as exc:
            errors[str(index)] = exc.message_dict
    if errors:
        raise WidgetListError(errors)
    return cleaned


class WidgetListError(ValidationError):
    """Per-widget, per-field messages (``detail`` keeps the nesting for the API's 400 body)."""

    def __init__(self, detail: dict[str, Any]) -> None:
        self.detail = detail
        super().__init__("; ".join(f"widget {index}: {field}: {' '.join(messages)}"
                                   for index, fields in detail.items() for field, messages in fields.items()))
