"""Factories of saved dashboards (kept apart from tests/dashboards/factories.py while other pages of the
dashboards app are built in parallel; fold in on merge)."""

from __future__ import annotations

import factory

from apps.dashboards.models import SavedDashboard
from tests.organizations.factories import OrganizationFactory


def widget(**overrides: object) -> dict[str, object]:
    """A valid widget as stored (every field present)."""
    return {"title": "", "metric": "cpu_usage_active", "labels": "", "agg": "avg", "range": "1h", "width": 6,
            **overrides}


class SavedDashboardFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SavedDashboard

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Dashboard {n}")
    widgets = factory.LazyFunction(lambda: [widget(title="CPU"), widget(metric="mem_used_percent", width=12)])
