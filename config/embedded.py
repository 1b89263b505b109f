"""Embedded mode: Celery worker and beat as threads of the web process.

With no REDIS_URL the broker is kombu's in-memory transport, which only
reaches consumers in the same process, so the ASGI server runs them beside
itself. The task code, acks and retries are the same as with a real broker;
only the transport differs. Not eager mode: tasks still leave the request.
"""

import logging
import socket
import threading

from django.conf import settings

from config.celery import app

log = logging.getLogger(__name__)

_started = threading.Event()
_lock = threading.Lock()


def start_embedded_workers(*, concurrency: int = 4, beat: bool = True) -> None:
    """Start the in-process worker (and beat) once; later calls do nothing."""
    with _lock:
        if _started.is_set():
            return
        worker = app.WorkController(
            pool_cls="threads",
            concurrency=concurrency,
            hostname=f"embedded@{socket.gethostname()}",
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
            loglevel="WARNING",
        )
        threading.Thread(
            target=worker.start, name="celery-embedded", daemon=True
        ).start()
        if beat:
            from celery.beat import EmbeddedService

            schedule = str(settings.VAR_DIR / "celerybeat-schedule")
            EmbeddedService(app, thread=True, schedule_filename=schedule).start()
        _started.set()
        log.info("embedded Celery worker (%d threads) and beat started", concurrency)
