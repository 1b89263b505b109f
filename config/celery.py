"""The Celery app. Beat schedule lives here so web, worker and beat agree.

``BEAT_SCHEDULE`` is a plain dict (Celery's beat format: name -> task,
seconds, options); embedded mode's in-process beat runs the same one.
"""

import os

from celery import Celery

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
