"""The Celery app. Beat schedule lives here so web, worker and beat agree."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("notebook_fleet")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
