"""Benchmark: Admin → Notebook Workers at 1k, 10k and 100k workers.

    createdb -h 127.0.0.1 -U postgres fleet_bench
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/fleet_bench \\
        .venv/bin/python bench/console_bench.py [--sizes 1000 10000 100000]

Grows one fleet with ``manage.py seed_load`` to each size (so run it on an
empty or bench-only database), then measures in-process with Django's test
Client: p50/p95 server time over 50 requests and the SQL query count for the
full page, its htmx results partial, and the page with terminal workers
included (the summary then aggregates every row). Not a test: numbers only.
"""

import argparse
import os
import re
import statistics
import sys
import time
from html import unescape
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1")
os.environ.setdefault("DEBUG", "1")  # plain static storage: no collectstatic needed

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from accounts.models import User  # noqa: E402
from workers.models import Worker  # noqa: E402

REQUESTS = 50
CASES = {
    "page": ("/admin/notebook-workers/", {}),
    "partial": (
        "/admin/notebook-workers/",
        {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "results"},
    ),
    "page+terminal": ("/admin/notebook-workers/?terminal=on", {}),
    "older docker": ("/admin/notebook-workers/?terminal=on&backend=docker", {}),
}


def staff_client() -> Client:
    user, _ = User.objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    return client


def grow_to(size: int, order: str) -> None:
    have = Worker.objects.count()
    if have > size:
        sys.exit(
            f"The database has {have} workers, more than {size}: use an empty one."
        )
    if have < size:
        print(f"seeding {size - have} workers (have {have}) ...", flush=True)
        call_command(
            "seed_load", workers=size - have, seed=size, order=order, verbosity=0
        )
    with connection.cursor() as cursor:  # what autovacuum does in production
        cursor.execute("VACUUM ANALYZE")


def measure(client: Client, url: str, headers: dict) -> tuple[float, float, int]:
    for _ in range(3):  # warm caches and the connection
        assert client.get(url, **headers).status_code == 200
    timings = []
    for _ in range(REQUESTS):
        start = time.perf_counter()
        client.get(url, **headers)
        timings.append((time.perf_counter() - start) * 1000)
    with CaptureQueriesContext(connection) as queries:
        client.get(url, **headers)
    p95 = statistics.quantiles(timings, n=20)[-1]
    return statistics.median(timings), p95, len(queries)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument(
        "--order",
        choices=["time", "random"],
        default="time",
        help="seed_load's row order: time (as rows arrive) or random (worst case)",
    )
    args = parser.parse_args()
    sizes = args.sizes
    if connection.vendor != "postgresql":
        sys.exit("Run against PostgreSQL: set DATABASE_URL=postgres://...")
    call_command("migrate", verbosity=0)
    results: dict[tuple[str, int], tuple[float, float, int]] = {}
    for size in sizes:
        grow_to(size, args.order)
        client = staff_client()
        for name, (url, headers) in CASES.items():
            if name == "older docker":
                url = older_url(client, url)
            results[name, size] = measure(client, url, headers)
    report(results, sizes)


def older_url(client: Client, url: str) -> str:
    """The second page of a keyset walk, to show paging costs the same."""
    html = client.get(url).content.decode()
    match = re.search(r'id="older" class="button" href="\?([^"]+)"', html)
    return f"/admin/notebook-workers/?{unescape(match.group(1))}" if match else url


def report(results: dict, sizes: list[int]) -> None:
    print(f"\n{'case':<15}{'workers':>9}{'p50 ms':>9}{'p95 ms':>9}{'queries':>9}")
    for name in CASES:
        for size in sizes:
            p50, p95, queries = results[name, size]
            print(f"{name:<15}{size:>9,}{p50:>9.1f}{p95:>9.1f}{queries:>9}")
    first, last = sizes[0], sizes[-1]
    print(f"\np95 ratio {last:,} / {first:,} workers:")
    for name in CASES:
        ratio = results[name, last][1] / results[name, first][1]
        print(f"  {name:<15}{ratio:>6.2f}x")


if __name__ == "__main__":
    main()
