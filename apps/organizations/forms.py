"""Forms for organization pages."""

from __future__ import annotations

from django import forms

from apps.organizations.models import AgentToken


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100)
    scope = forms.ChoiceField(choices=AgentToken.Scope.choices, initial=AgentToken.Scope.WRITE)
    expires_at = forms.DateTimeField(required=False, help_text="Optional, e.g. 2027-01-31 00:00")
