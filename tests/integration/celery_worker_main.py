"""A real Celery worker for the lifecycle tests, run as a subprocess:

    python -m tests.integration.celery_worker_main <fake-backend-state.json>

It serves the shared file-backed ``FakeBackend`` (the test process sees the
same runtimes) and consumes the Redis broker with a short visibility timeout
so a message held by a killed worker comes back within seconds.
"""

import sys

import django


def main(state_path: str) -> None:
    django.setup()
    from config.celery import app
    from tests.fakes import FakeBackend, FakeProbe
    from workers.services import runtime

    backend = FakeBackend(state_path)
    runtime.override_backend("local", backend)
    runtime.override_probe(FakeProbe(backend))
    app.conf.broker_transport_options = {
        **(app.conf.broker_transport_options or {}),
        "visibility_timeout": 3,
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
    }
    app.worker_main(
        [
            "worker",
            "--pool=solo",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
            "--loglevel=WARNING",
        ]
    )


if __name__ == "__main__":
    main(sys.argv[1])
