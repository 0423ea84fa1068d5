"""The audit filter form, shared by the page, the export and the API so all three accept the same
query parameters (`actor`, `action`, `object_type`, `object_id`, `from`, `to`)."""

from __future__ import annotations

from typing import Any

from django import forms


class AuditFilterForm(forms.Form):
    """Filters for the audit log. `from`/`to` are whole days, both inclusive, in the site time zone."""

    actor = forms.CharField(required=False, max_length=200, help_text="User name or token name (contains)")
    action = forms.CharField(required=False, max_length=100, help_text="Action prefix, e.g. token. or token.revoked")
    object_type = forms.CharField(required=False, max_length=100, help_text="e.g. organizations.agenttoken")
    object_id = forms.CharField(required=False, max_length=64)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # `from` is a Python keyword, so these two cannot be class attributes; the query parameter names
        # are kept short because people type them into export URLs.
        self.fields["from"] = forms.DateField(required=False, label="From",
                                              widget=forms.DateInput(attrs={"type": "date"}))
        self.fields["to"] = forms.DateField(required=False, label="To",
                                            widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("from"), cleaned.get("to")
        if start and end and start > end:
            raise forms.ValidationError("The period must not end before it starts.")
        return cleaned
