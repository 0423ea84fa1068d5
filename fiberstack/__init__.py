"""FiberStack project package. Exposes the Celery app so `celery -A fiberstack` finds it."""

from __future__ import annotations

from fiberstack.celery import app as celery_app

__all__ = ["celery_app"]
