import uvicorn
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connections


class Command(BaseCommand):
    help = (
        "Serve the ASGI app (HTTP + WebSockets) with uvicorn. In embedded mode (no "
        "REDIS_URL) the Celery worker and beat run as threads of this process."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--no-embedded-workers",
            action="store_true",
            help="Do not start the in-process task worker even without REDIS_URL.",
        )

    def handle(self, *args, host, port, no_embedded_workers, **options):
        _pool_database_connections()
        if settings.EMBEDDED_MODE and not no_embedded_workers:
            from config.embedded import start_embedded_workers

            start_embedded_workers()
            self.stdout.write(
                "Embedded mode: in-memory broker, task worker and beat in-process."
            )
        else:
            self.stdout.write(
                f"Broker: {settings.CELERY_BROKER_URL.split('@')[-1]}; run celery separately."
            )
        self.stdout.write(f"Serving on http://{host}:{port}/")
        uvicorn.run(
            "config.asgi:application",
            host=host,
            port=port,
            log_level="info",
            # Django's LOGGING formats uvicorn's lines too: sanitized (an
            # access line's query string may hold ?token=...) and JSON with
            # LOG_FORMAT=json. uvicorn's own config would bypass both.
            log_config=None,
            lifespan="off",
        )


def _pool_database_connections() -> None:
    """Serve requests from a pool of PostgreSQL connections
    (``DATABASE_POOL_MAX_SIZE``): under ASGI each request's sync code runs
    on a thread of its own, so without a pool every request connected
    anew. Set here, before any request: Django reads ``OPTIONS["pool"]``
    when a thread first opens a connection."""
    database = settings.DATABASES["default"]
    size = settings.DATABASE_POOL_MAX_SIZE
    if (
        not size
        or database["ENGINE"] != "django.db.backends.postgresql"
        or database.get("CONN_MAX_AGE")  # Django pools only fresh connections
    ):
        return
    connections.close_all()
    database.setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": size,
        "timeout": 30,
    }
