"""A real Celery worker for the lifecycle tests, run as a subprocess:

    python -m tests.integration.celery_worker_main <fake-backend-state.json>

It serves the shared file-backed ``FakeBackend`` (the test process sees the
same runtimes) and consumes the Redis broker with the production settings
(the visibility timeout derived from the task time limits, the LOGGING of
config.settings) at the log level in ``CELERY_TEST_LOGLEVEL`` (WARNING).
"""

import os
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
    loglevel = os.environ.get("CELERY_TEST_LOGLEVEL", "WARNING")
    app.worker_main(
        [
            "worker",
            "--pool=solo",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
            f"--loglevel={loglevel}",
        ]
    )


if __name__ == "__main__":
    main(sys.argv[1])
