"""Benchmark: committed status change -> row on N open consoles.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/fleet_bench \\
    REDIS_URL=redis://127.0.0.1:6379/3 \\
        .venv/bin/python bench/ws_latency_bench.py [--clients 1000 --changes 20]

Serves the real ASGI app with ``manage.py serve`` (``--servers N``: N processes
on N ports, the clients spread over them as a load balancer would) with the
Redis channel layer, opens N websocket clients with a staff session cookie
(at most ``--connect-concurrency`` handshakes at a time, as browsers arrive),
then flips one worker ready <-> busy through the real transition service
(which publishes on commit) and times, per client, from just before the
change is committed to the arrival of the row carrying the new status.

Each change waits until every client has its row (or ``--deadline`` passed)
before the next one, so a slow delivery is measured, not counted as lost.
Lost = expected deliveries (clients x changes) - delivered; a refused or
closed socket loses every change after it.
"""

import argparse
import asyncio
import collections
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

VERBOSE = bool(os.environ.get("WS_BENCH_VERBOSE"))


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


def start_servers(count: int) -> tuple[list[subprocess.Popen], list[int]]:
    """``manage.py serve`` (the production entry point) on ``count`` ports."""
    env = {**os.environ, "LOG_LEVEL": "WARNING"}
    ports = [free_port() for _ in range(count)]
    servers = [
        subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        for port in ports
    ]
    deadline = time.monotonic() + 30
    for port in ports:
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    stop_servers(servers)
                    sys.exit("the server did not start")
                time.sleep(0.2)
    return servers, ports


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of ``pids`` so far (Linux ``/proc``), to tell
    the server's own cost per change from a busy machine's queueing."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def stop_servers(servers: list[subprocess.Popen]) -> None:
    for server in servers:
        server.terminate()
    for server in servers:
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()


class Client:
    def __init__(self, worker_id: str):
        self.worker_id = worker_id
        self.want: str | None = None  # the status the running change sets
        self.arrival: float | None = None
        self.done: asyncio.Semaphore | None = None  # released on arrival
        self.opened = False
        self.close_reason: str | None = None

    async def run(self, url: str, cookie: str, gate: asyncio.Semaphore, ready):
        headers = {"Cookie": f"sessionid={cookie}", "Origin": "http://127.0.0.1"}
        try:
            async with gate:
                ws = await websockets.connect(
                    url, additional_headers=headers, open_timeout=60
                )
            self.opened = True
            ready()
            async for message in ws:
                self.record(message, time.perf_counter())
            self.close_reason = f"closed {ws.close_code}"
        except (OSError, websockets.WebSocketException, TimeoutError) as exc:
            self.close_reason = f"{type(exc).__name__}: {exc}"[:120]
            ready()

    def record(self, message: str, now: float) -> None:
        if self.want and f'id="worker-{self.worker_id}"' in message:
            status = message.split("badge status-", 1)[1].split('"', 1)[0]
            if status == self.want and self.arrival is None:
                self.arrival = now
                self.done.release()


async def flip(worker_id, frm: str, to: str) -> float:
    started = time.perf_counter()
    await asyncio.to_thread(
        worker_transition, worker_id=worker_id, expected=frm, to=to,
        actor_type=Actor.SYSTEM, actor_label="ws_bench", reason="bench",
    )  # fmt: skip
    if VERBOSE:
        took = (time.perf_counter() - started) * 1000
        print(f"  commit + publish returned after {took:.0f} ms")
    return started


async def open_clients(urls, n_clients, concurrency, worker_id):
    cookie = await asyncio.to_thread(staff_session)
    clients = [Client(worker_id) for _ in range(n_clients)]
    gate = asyncio.Semaphore(concurrency)
    pending = n_clients
    all_ready = asyncio.Event()

    def ready() -> None:
        nonlocal pending
        pending -= 1
        if not pending:
            all_ready.set()

    started = time.perf_counter()
    tasks = [
        asyncio.create_task(c.run(urls[i % len(urls)], cookie, gate, ready))
        for i, c in enumerate(clients)
    ]
    await all_ready.wait()
    took = time.perf_counter() - started
    opened = sum(c.opened for c in clients)
    print(f"  {opened} of {n_clients} sockets opened in {took:.1f} s")
    return clients, tasks


async def one_change(clients, worker_id, frm, to, deadline) -> list[float | None]:
    done = asyncio.Semaphore(0)
    for c in clients:
        c.want, c.arrival, c.done = to, None, done
    gc.disable()  # the measuring clients' own GC pauses are not latency
    try:
        started = await flip(worker_id, frm, to)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(deadline):
                for _ in clients:
                    await done.acquire()
    finally:
        gc.enable()
    return [
        None if c.arrival is None else (c.arrival - started) * 1000 for c in clients
    ]


async def bench(servers, ports, n_clients, changes, concurrency, deadline):
    worker = await asyncio.to_thread(bench_worker)
    urls = [f"ws://127.0.0.1:{p}/ws/admin/notebook-workers/" for p in ports]
    clients, tasks = await open_clients(urls, n_clients, concurrency, str(worker.id))
    await asyncio.sleep(1.0)  # let every group_add settle
    gc.collect()
    gc.freeze()  # the open clients: no collection need walk them again
    latencies: list[float] = []
    lost = 0
    status = "ready"
    pids = [server.pid for server in servers]
    if VERBOSE:
        print(f"  server pids {pids}", flush=True)
    for change in range(changes + 1):  # change 0 warms up (template compile)
        if change == 1:
            cpu = cpu_seconds(pids), time.process_time()
        new = "busy" if status == "ready" else "ready"
        got = await one_change(clients, worker.id, status, new, deadline)
        these = [t for t in got if t is not None]
        missing = len(got) - len(these)
        if VERBOSE and these:
            print(f"  change {change}: {min(these):.0f}..{max(these):.0f} ms")
        if missing:
            print(f"  change {change}: {missing} clients missed the row")
        if change:
            latencies += these
            lost += missing
        status = new
        await asyncio.sleep(0.2)
    server_cpu = (cpu_seconds(pids) - cpu[0]) / changes * 1000
    client_cpu = (time.process_time() - cpu[1]) / changes * 1000
    print(f"  CPU per change: servers {server_cpu:.0f} ms, clients {client_cpu:.0f} ms")
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    closed = collections.Counter(c.close_reason for c in clients if c.close_reason)
    for reason, count in closed.items():
        print(f"  {count} sockets: {reason}")
    if status != "ready":
        await flip(worker.id, status, "ready")
    return latencies, lost


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--servers", type=int, default=1)
    parser.add_argument("--connect-concurrency", type=int, default=50)
    parser.add_argument(
        "--deadline", type=float, default=10.0, help="seconds a change may take"
    )
    args = parser.parse_args()
    if not settings.REDIS_URL:
        sys.exit("Set REDIS_URL: the bench measures the Redis channel layer.")
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    servers, ports = start_servers(args.servers)
    try:
        latencies, lost = asyncio.run(
            bench(
                servers, ports, args.clients, args.changes,
                args.connect_concurrency, args.deadline,
            )
        )  # fmt: skip
    finally:
        stop_servers(servers)
    expected = args.clients * args.changes
    print(f"\n{args.clients} clients x {args.changes} committed changes, "
          f"{args.servers} server process(es): "
          f"{len(latencies)} of {expected} delivered, {lost} lost")  # fmt: skip
    if not latencies:
        sys.exit(1)
    qs = statistics.quantiles(latencies, n=20) if len(latencies) > 1 else latencies
    print(f"  p50 {statistics.median(latencies):7.1f} ms")
    print(f"  p95 {qs[-1]:7.1f} ms   (goal <= 250 ms, nothing lost)")
    print(f"  max {max(latencies):7.1f} ms")
    if lost:
        sys.exit(1)


if __name__ == "__main__":
    main()
