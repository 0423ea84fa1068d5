"""The Celery application. Beat's schedule lives in settings (CELERY_BEAT_SCHEDULE), routes in
celery_routes.py."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fiberstack.settings.dev")

app = Celery("fiberstack")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_routes = "fiberstack.celery_routes.route_task"
app.autodiscover_tasks()
