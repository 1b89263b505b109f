"""Benchmark: POST /api/v1/ide latency under 50 concurrent clients, over
real HTTP to the ASGI app under uvicorn on 127.0.0.1, on a scratch
PostgreSQL database.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/fleet_api_bench \\
        .venv/bin/python bench/api_bench.py [--clients 50 --per-client 3]

Two rounds, each client a thread with its own keep-alive connection and a
personal API token, all released together:

- ``limit``: one user, per-user limit 3, every client creates once: the
  issue's race (expect 3 x 201 and the rest 409 naming the limit);
- ``accepted``: one user per client, each creating ``--per-client``
  workspaces one after the other (at most 3, the limit: all 201).

Each create is validated by the launch form, written and started (the
start task is enqueued, not run: no runtime is launched). The server runs
without REDIS_URL unless ``--redis`` is given (then the Celery queue of
that Redis db is purged at the end: use a scratch db). Prints status counts
and latency p50/p95/max per round. Numbers only, no assertion on speed.
"""

import argparse
import logging
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx  # noqa: E402
import scratch_db  # noqa: F401 - sets up Django on a scratch database

from accounts.models import ApiToken, User  # noqa: E402
from accounts.services import api_token_create  # noqa: E402
from resource_classes.models import ResourceClass  # noqa: E402
from tests.factories import ProjectFactory, ResourceClassFactory  # noqa: E402
from workspaces.models import SchedulingQueue  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
IMAGE = "jupyter/base-notebook:4.2"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def seed_user(name: str) -> str:
    """``name`` with a fresh personal project and API token; the token."""
    user, _ = User.objects.get_or_create(username=name)
    ApiToken.objects.filter(user=user).delete()
    ProjectFactory(personal_owner=user, slug=name, image_allowlist=[IMAGE])
    return api_token_create(user=user, name="bench", expires_in_days=1)[1]


def seed(clients: int) -> tuple[str, list[str]]:
    if ResourceClass.objects.default() is None:
        ResourceClassFactory(id="bench-small", is_default=True)
    SchedulingQueue.default()
    shared = seed_user("api-bench-shared")
    return shared, [seed_user(f"api-bench-{n}") for n in range(clients)]


def start_server(port: int, *, workers: int, redis: bool) -> subprocess.Popen:
    # Plain HTTP on loopback: no redirect to HTTPS.
    env = {**os.environ, "LOG_LEVEL": "WARNING", "CONN_MAX_AGE": "0"}
    env["SECURE_HTTPS"] = "0"
    env["NOTEBOOK_RUNTIME_MAX_WORKERS_PER_USER"] = "3"
    if not redis:
        env.pop("REDIS_URL", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "config.asgi:application",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
         "--lifespan", "off", "--workers", str(workers)],
        cwd=ROOT, env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return server
        except OSError:
            time.sleep(0.1)
    server.terminate()
    sys.exit("uvicorn did not start")


def run_round(base: str, tokens: list[str], per_client: int, tag: str) -> list:
    """Each token's client creates ``per_client`` workspaces; (status, s)."""
    barrier = threading.Barrier(len(tokens))

    def client(args) -> list[tuple[int, float]]:
        n, token = args
        headers = {"Authorization": f"Bearer {token}"}
        results = []
        with httpx.Client(base_url=base, headers=headers, timeout=120) as http:
            http.get("/api/v1/ide?page_size=1")  # open the connection first
            barrier.wait()
            for k in range(per_client):
                body = {"name": f"{tag}-{n}-{k}", "image": IMAGE}
                started = time.perf_counter()
                response = http.post("/api/v1/ide", json=body)
                results.append((response.status_code, time.perf_counter() - started))
        return results

    with ThreadPoolExecutor(max_workers=len(tokens)) as pool:
        return [r for rs in pool.map(client, enumerate(tokens)) for r in rs]


def report(name: str, results: list, wall: float) -> None:
    latencies = sorted(seconds for _, seconds in results)
    p95 = latencies[max(int(len(latencies) * 0.95) - 1, 0)]
    print(
        f"{name}: {len(results)} requests in {wall:.2f} s, "
        f"statuses {dict(Counter(status for status, _ in results))}; "
        f"latency p50 {statistics.median(latencies) * 1000:.0f} ms, "
        f"p95 {p95 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms"
    )


def main() -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--per-client", type=int, default=3, choices=(1, 2, 3))
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers")
    parser.add_argument("--redis", action="store_true", help="broker: REDIS_URL")
    args = parser.parse_args()
    shared, own = seed(args.clients)
    port = free_port()
    server = start_server(port, workers=args.workers, redis=args.redis)
    base = f"http://127.0.0.1:{port}"
    try:
        print(f"{args.clients} clients, uvicorn --workers {args.workers}")
        started = time.perf_counter()
        results = run_round(base, [shared] * args.clients, 1, "limit")
        report("limit (1 user, limit 3)", results, time.perf_counter() - started)
        started = time.perf_counter()
        results = run_round(base, own, args.per_client, "own")
        report("accepted (1 user per client)", results, time.perf_counter() - started)
    finally:
        server.terminate()
        server.wait(10)
        if args.redis:
            from config.celery import app

            app.control.purge()


if __name__ == "__main__":
    main()
