"""On-call models, one module per concern, re-exported here."""

from apps.escalation.models.feeds import CalendarFeed
from apps.escalation.models.schedules import OnCallSchedule, ScheduleLayer, ScheduleLayerMember, ScheduleOverride

__all__ = ["CalendarFeed", "OnCallSchedule", "ScheduleLayer", "ScheduleLayerMember", "ScheduleOverride"]
