"""Benchmark: Admin → Notebook Workers → Fleet health at N workers.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/fleet_health_bench \\
        .venv/bin/python bench/fleet_health_bench.py [--workers 100000] [--keep]

Seeds a scratch database (created if missing, emptied first) with
``manage.py seed_load`` (workers over 90 days, each with its birth and
latest transition in the event log) plus the start ends and idle reaps of
the last 8 days (see ``START_ENDS``), then measures in-process with
Django's test Client: p50/p95 server time over 50 requests and the SQL
query count of the page and its JSON data, for both ranges. ``--keep``
reuses the fleet already there. Not a test: numbers only.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # scratch_db
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1")
os.environ.setdefault("DEBUG", "1")  # plain static storage: no collectstatic needed

REQUESTS = 50
CASES = {
    "page 24h": "/admin/notebook-workers/health/?range=24h",
    "page 7d": "/admin/notebook-workers/health/?range=7d",
    "json 24h": "/admin/notebook-workers/health/data.json?range=24h",
    "json 7d": "/admin/notebook-workers/health/data.json?range=7d",
}


def setup(workers: int, keep: bool) -> None:
    if keep:
        import django

        django.setup()
        return
    import scratch_db  # noqa: F401 - sets up Django, empties the fleet
    from django.core.management import call_command
    from django.db import connection

    print(f"seeding {workers} workers ...", flush=True)
    call_command("seed_load", workers=workers, seed=13, verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute(START_ENDS)
        cursor.execute(IDLE_REAPS)
        cursor.execute("VACUUM ANALYZE")  # what autovacuum does in production


# seed_load writes a worker's birth and its latest transition only; the
# start charts need the start's end, and the reaper chart a reaper. Added
# for the last 8 days: every start ends 5-120 s after creation (failed
# workers' in failure), and a third of the stopped workers were idle-reaped.
START_ENDS = """
INSERT INTO workers_workerevent
    (worker_id, at, kind, actor_type, actor_label, from_status, to_status, reason, data)
SELECT id, created_at + (5 + random() * 115) * interval '1 second', 'transition',
    'system', 'start_worker', 'starting',
    CASE WHEN status = 'failed' THEN 'failed' ELSE 'ready' END, '', '{}'
FROM workers_worker
WHERE created_at >= now() - interval '8 days' AND status <> 'starting'
"""
IDLE_REAPS = """
INSERT INTO workers_workerevent
    (worker_id, at, kind, actor_type, actor_label, from_status, to_status, reason, data)
SELECT id, status_changed_at - interval '5 seconds', 'transition', 'system',
    'reap_idle', 'ready', 'stopping', 'Idle', '{}'
FROM workers_worker
WHERE created_at >= now() - interval '8 days' AND status = 'stopped'
    AND random() < 0.33
"""


def measure(client, url: str) -> tuple[float, float, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(3):  # warm caches and the connection
        assert client.get(url).status_code == 200
    timings = []
    for _ in range(REQUESTS):
        start = time.perf_counter()
        client.get(url)
        timings.append((time.perf_counter() - start) * 1000)
    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    p95 = statistics.quantiles(timings, n=20)[-1]
    return statistics.median(timings), p95, len(queries)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    setup(args.workers, args.keep)
    from django.test import Client

    from accounts.models import User
    from workers.models import Worker, WorkerEvent

    user, _ = User.objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    print(f"workers={Worker.objects.count():,} events={WorkerEvent.objects.count():,}")
    print(f"{'case':<10}{'p50 ms':>9}{'p95 ms':>9}{'queries':>9}")
    for name, url in CASES.items():
        p50, p95, queries = measure(client, url)
        print(f"{name:<10}{p50:>9.1f}{p95:>9.1f}{queries:>9}")


if __name__ == "__main__":
    main()
