"""Benchmark: committed status change -> row on 200 open consoles.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/fleet_bench \\
    REDIS_URL=redis://127.0.0.1:6379/3 \\
        .venv/bin/python bench/ws_latency_bench.py [--clients 200 --changes 20]

Runs the real ASGI app under uvicorn on a free 127.0.0.1 port with the Redis
channel layer, opens N websocket clients with a staff session cookie, then
flips one worker ready <-> busy through the real transition service (which
publishes on commit) and times, per client, from just before the change is
committed to the arrival of the row carrying the new status.
"""

import argparse
import asyncio
import contextlib
import gc
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

import websockets  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth import (  # noqa: E402
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
)
from django.contrib.sessions.backends.db import SessionStore  # noqa: E402

from accounts.models import User  # noqa: E402
from tests.factories import WorkerFactory  # noqa: E402
from workers.models import Actor, Worker  # noqa: E402
from workers.services import worker_transition  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def staff_session() -> str:
    user, _ = User.objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return session.session_key


def bench_worker():
    """A seeded ready worker (seed_load made the fleet), else a new one."""
    worker = Worker.objects.filter(status="ready").order_by("-created_at").first()
    return worker or WorkerFactory(status="ready", name="ws-bench")


def start_server(port: int) -> subprocess.Popen:
    env = {**os.environ, "LOG_LEVEL": "WARNING"}
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "config.asgi:application",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    sys.exit("uvicorn did not start")


class Client:
    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}  # "<status>#<n>" -> receive time
        self.ws = None

    async def run(self, url: str, cookie: str, worker_id: str, ready: asyncio.Event):
        headers = {"Cookie": f"sessionid={cookie}", "Origin": "http://127.0.0.1"}
        async with websockets.connect(url, additional_headers=headers) as ws:
            self.ws = ws
            ready.set()
            with contextlib.suppress(websockets.ConnectionClosed):
                async for message in ws:
                    self.record(message, worker_id, time.perf_counter())

    def record(self, message: str, worker_id: str, now: float) -> None:
        if worker_id in message:
            status = message.split("badge status-", 1)[1].split('"', 1)[0]
            self.arrivals.setdefault(status, now)


async def flip(worker_id, frm: str, to: str) -> float:
    started = time.perf_counter()
    await asyncio.to_thread(
        worker_transition, worker_id=worker_id, expected=frm, to=to,
        actor_type=Actor.SYSTEM, actor_label="ws_bench", reason="bench",
    )  # fmt: skip
    if os.environ.get("WS_BENCH_VERBOSE"):
        took = (time.perf_counter() - started) * 1000
        print(f"  commit + publish returned after {took:.0f} ms")
    return started


async def bench(port: int, n_clients: int, changes: int) -> list[float]:
    cookie = await asyncio.to_thread(staff_session)
    worker = await asyncio.to_thread(bench_worker)
    url = f"ws://127.0.0.1:{port}/ws/admin/notebook-workers/"
    clients = [Client() for _ in range(n_clients)]
    events = [asyncio.Event() for _ in clients]
    tasks = [
        asyncio.create_task(c.run(url, cookie, str(worker.id), e))
        for c, e in zip(clients, events, strict=True)
    ]
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), 60)
    await asyncio.sleep(1.0)  # let every group_add settle
    latencies: list[float] = []
    status = "ready"
    for change in range(changes + 1):  # change 0 warms up (template compile)
        new = "busy" if status == "ready" else "ready"
        for c in clients:
            c.arrivals.pop(new, None)
        gc.collect()  # the measuring clients' own GC pauses are not latency
        gc.disable()
        started = await flip(worker.id, status, new)
        await asyncio.sleep(1.5)
        gc.enable()
        got = [c.arrivals.get(new) for c in clients]
        these = [(t - started) * 1000 for t in got if t is not None]
        if os.environ.get("WS_BENCH_VERBOSE") and these:
            print(f"  change {change}: {min(these):.0f}..{max(these):.0f} ms")
        if change:
            latencies += these
        missing = sum(t is None for t in got)
        if missing:
            print(f"  {missing} clients missed the change to {new}")
        status = new
    for task in tasks:
        task.cancel()
    if status != "ready":
        await flip(worker.id, status, "ready")
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--changes", type=int, default=20)
    args = parser.parse_args()
    if not settings.REDIS_URL:
        sys.exit("Set REDIS_URL: the bench measures the Redis channel layer.")
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    port = free_port()
    server = start_server(port)
    try:
        latencies = asyncio.run(bench(port, args.clients, args.changes))
    finally:
        server.terminate()
        server.wait(10)
    qs = statistics.quantiles(latencies, n=20)
    print(f"\n{args.clients} clients x {args.changes} committed changes "
          f"({len(latencies)} deliveries)")  # fmt: skip
    print(f"  p50 {statistics.median(latencies):7.1f} ms")
    print(f"  p95 {qs[-1]:7.1f} ms   (goal <= 250 ms)")
    print(f"  max {max(latencies):7.1f} ms")


if __name__ == "__main__":
    main()
