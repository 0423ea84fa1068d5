"""Forms for organization pages."""

from __future__ import annotations

from django import forms

from apps.core.forms import BoundedDateTimeField
from apps.organizations.models import AgentToken


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100)
    scope = forms.ChoiceField(
        choices=AgentToken.Scope.choices, initial=AgentToken.Scope.INGEST,
        help_text="Ingest: agents push metrics, nothing else. Read: dashboards and scripts read metrics, hosts "
                  "and services. Read and configure: also manage hosts, services and dependencies. No token "
                  "reaches members, tokens or the audit log.",
    )
    expires_at = BoundedDateTimeField(required=False, help_text="Optional, e.g. 2027-01-31 00:00")
