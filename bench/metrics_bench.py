"""Scrape time of /metrics at fleet size N (goal: <= 200 ms at 100k workers),
first scrape in a fresh process included.

    DATABASE_URL=postgres://.../scratch .venv/bin/python bench/metrics_bench.py \
        [--workers 100000] [--keep] [--processes 5] [--runs 20] [--http]

Seeds the fleet with ``seed_load`` (unless --keep reuses the fleet already
in the scratch database), then gives each worker that left ``starting`` the
lifecycle transitions the fold counts (``seed_load`` writes none: a start
that ended, a stop and its end), once, and runs ANALYZE as autovacuum would.
Then it reports, each in processes of their own:

* the fold of the whole log, which a process pays only when no checkpoint
  exists (the first scrape after this release, or after the log was reset);
* the first scrape of each of --processes fresh processes, which continue
  from the checkpoint the others saved, after 50 new events each;
* --runs later scrapes in one process (p50 / p95 / max);
* with --http, the same through ``manage.py serve``: the first GET /metrics
  of a fresh server (after its /readyz, as an orchestrator would call it)
  and --runs later ones.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
LABEL = "metrics_bench"
NEW_EVENTS = 50
TOKEN = "metrics-bench-token"

LIFECYCLE_SQL = """
INSERT INTO workers_workerevent
    (at, kind, actor_type, actor_label, from_status, to_status, reason, data,
     worker_id)
SELECT e.at, 'transition', 'system', %(label)s, e.from_status, e.to_status, '',
       '{}', e.worker_id
FROM (
    SELECT w.id AS worker_id, 'starting' AS from_status, 'ready' AS to_status,
           w.created_at + make_interval(secs => 5 + abs(hashtext(w.id::text)) %% 55)
           AS at
    FROM workers_worker w WHERE w.status <> 'starting'
    UNION ALL
    SELECT w.id, 'ready', 'stopping', w.stopped_at - interval '3 seconds'
    FROM workers_worker w WHERE w.status = 'stopped'
    UNION ALL
    SELECT w.id, 'stopping', 'stopped', w.stopped_at
    FROM workers_worker w WHERE w.status = 'stopped'
) e
ORDER BY e.at
"""


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def add_lifecycle_events() -> None:
    from django.db import connection

    from workers.models import WorkerEvent

    if not WorkerEvent.objects.filter(actor_label=LABEL).exists():
        with connection.cursor() as cursor:
            cursor.execute(LIFECYCLE_SQL, {"label": LABEL})
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def add_new_events(count: int) -> None:
    """Events written since the last checkpoint, as a live fleet makes."""
    from workers.models import Worker, WorkerEvent

    worker = Worker.objects.order_by("created_at").first()
    WorkerEvent.objects.bulk_create(
        WorkerEvent(
            worker=worker,
            kind="automation",
            actor_type="system",
            actor_label=LABEL,
            reason="bench",
        )
        for _ in range(count)
    )


def child(mode: str) -> None:
    """One fresh process: the time of its first scrape (its first database
    connection included), as JSON on stdout."""
    import django

    django.setup()
    from django.db import connections

    from ops.scrape import render

    if mode == "cold":
        try:
            from ops.models import EventFoldCheckpoint
        except ImportError:  # a release without checkpoints
            pass
        else:
            EventFoldCheckpoint.objects.all().delete()
    else:
        add_new_events(NEW_EVENTS)
    connections.close_all()
    started = time.perf_counter()
    render()
    first = (time.perf_counter() - started) * 1000
    print(json.dumps({"first_ms": first}))


def spawn(mode: str) -> float:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])["first_ms"]


def later_scrapes(runs: int) -> list[float]:
    from ops.scrape import render

    render()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        render()
        times.append((time.perf_counter() - started) * 1000)
    return times


def http_scrapes(runs: int) -> tuple[float, list[float]]:
    import socket

    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "METRICS_TOKEN": TOKEN, "SECURE_HTTPS": "0"}
    server = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "serve",
            "--port",
            str(port),
            "--no-embedded-workers",  # no task worker changing the fleet
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=30) as client:
            for _ in range(200):
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            auth = {"Authorization": f"Bearer {TOKEN}"}
            times = []
            for _ in range(runs + 1):
                started = time.perf_counter()
                assert client.get("/metrics", headers=auth).status_code == 200
                times.append((time.perf_counter() - started) * 1000)
        return times[0], times[1:]
    finally:
        server.terminate()
        server.wait(20)


def summary(times: list[float]) -> str:
    return (
        f"p50={statistics.median(times):.0f} ms p95={percentile(times, 0.95):.0f} ms "
        f"max={max(times):.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--processes", type=int, default=5)
    parser.add_argument("--http", action="store_true")
    parser.add_argument("--child", choices=["cold", "first"])
    args = parser.parse_args()
    if args.child:
        return child(args.child)
    if args.keep:
        import django

        django.setup()
    else:
        import scratch_db  # noqa: F401 - sets up Django, empties the fleet
        from django.core.management import call_command

        call_command("seed_load", workers=args.workers, seed=13, verbosity=0)
    add_lifecycle_events()
    from workers.models import Worker, WorkerEvent

    cold = spawn("cold")
    firsts = [spawn("first") for _ in range(args.processes)]
    later = later_scrapes(args.runs)
    print(
        f"workers={Worker.objects.count()} events={WorkerEvent.objects.count()}\n"
        f"  fold of the whole log (no checkpoint): {cold:.0f} ms\n"
        f"  first scrape of {args.processes} fresh processes: {summary(firsts)}\n"
        f"  later scrapes: {summary(later)}"
    )
    if args.http:
        first, rest = http_scrapes(args.runs)
        print(
            f"  HTTP (manage.py serve): first GET /metrics {first:.0f} ms; "
            f"later {summary(rest)}"
        )


if __name__ == "__main__":
    main()
