"""The edit page's forms: the dashboard's name and description, and a formset with one WidgetForm per
widget (ORDER for reordering, DELETE for removing; static/js/dashboards.js drives both and adds widgets)."""

from __future__ import annotations

from typing import Any

from django import forms

from apps.dashboards.saved.widgets import MAX_WIDGETS, WIDGET_FIELDS, WidgetForm


class DashboardForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 2}))


# absolute_max: a posted TOTAL_FORMS of 10**20 otherwise builds (and renders back) MAX_WIDGETS + 1000 forms.
WidgetFormSet = forms.formset_factory(WidgetForm, extra=0, can_order=True, can_delete=True, absolute_max=MAX_WIDGETS,
                                      max_num=MAX_WIDGETS, validate_max=True)


def widget_formset(data: Any = None, widgets: list[dict[str, Any]] | None = None) -> Any:
    """The formset, bound to POST data or showing ``widgets`` (a new dashboard starts with one empty widget)."""
    if data is not None:
        return WidgetFormSet(data, prefix="widgets")
    initial = widgets if widgets else [{}]
    return WidgetFormSet(initial=initial, prefix="widgets")


def widgets_of(formset: Any) -> list[dict[str, Any]]:
    """The kept widgets in the order the editor chose (ORDER, then the page order)."""
    return [{name: form.cleaned_data[name] for name in WIDGET_FIELDS} for form in formset.ordered_forms]
