"""The Celery app. Beat schedule lives here so web, worker and beat agree.

``BEAT_SCHEDULE`` is a plain dict (Celery's beat format: name -> task,
seconds, options); embedded mode's in-process beat runs the same one.
"""

import os

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("notebook_fleet")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def beat_schedule() -> dict:
    """The periodic lifecycle tasks, intervals from settings (read now).
    Each expires before its next run so an outage never piles them up."""
    from django.conf import settings

    def every(seconds: float, task: str) -> dict:
        return {
            "task": task,
            "schedule": float(seconds),
            "options": {"expires": seconds},
        }

    reconcile = settings.NOTEBOOK_RUNTIME_RECONCILE_INTERVAL_SECONDS
    probe = settings.NOTEBOOK_RUNTIME_PROBE_INTERVAL_SECONDS
    reap = settings.NOTEBOOK_RUNTIME_REAP_INTERVAL_SECONDS
    return {
        "reconcile-workers": every(reconcile, "workers.tasks.reconcile_workers"),
        "probe-workers": every(probe, "workers.tasks.probe_workers"),
        "reap-idle": every(reap, "workers.tasks.reap_idle"),
        "reap-plan-windows": every(reap, "workspaces.tasks.reap_plan_windows"),
        "cleanup-stale": every(reap, "workers.tasks.cleanup_stale"),
    }


@app.on_after_finalize.connect
def _install_beat_schedule(sender, **kwargs) -> None:
    sender.conf.beat_schedule = beat_schedule()


@after_setup_logger.connect
@after_setup_task_logger.connect
def _sanitize_worker_logs(logger, **kwargs) -> None:
    """A Celery worker that hijacks the root logger (plain log format)
    writes through handlers of its own, without ``LOGGING``'s filters; give
    them the sanitizing one too (task failure lines carry exception text)."""
    from ops.logs import SanitizeFilter

    for handler in logger.handlers:
        if not any(isinstance(f, SanitizeFilter) for f in handler.filters):
            handler.addFilter(SanitizeFilter())
