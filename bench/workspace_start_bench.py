"""Benchmark: time from "Start" to Running on the local backend.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/fleet_bench \\
        .venv/bin/python bench/workspace_start_bench.py [--runs 10] [--poll 0.5]

Each run presses Start the way the page does (``workspace_start``), runs the
``start_worker`` task body in a thread as a Celery worker would (a real
JupyterLab process launched by the local backend, probed over HTTP until it
answers), and times until the worker is ``ready``; then stops it and waits
until the backend confirms it is gone. Prints p50 / p95 / max (goal: p50 at
most 5 s on this machine) and the start poll interval used. Numbers only.
"""

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import scratch_db  # noqa: F401 - sets up Django on a scratch database
from django.conf import settings
from django.db import close_old_connections

from tests.factories import ResourceClassFactory, WorkspaceFactory
from workers import services as worker_services
from workers.backends import registry
from workers.backends.local import LocalBackend
from workers.models import Worker
from workers.services import queueing
from workspaces.services import workspace_start, workspace_stop


def run_task(task_name: str, worker_id: str) -> None:
    """Stands in for the broker: the task body in a thread, after commit."""

    def body() -> None:
        try:
            if task_name == "start_worker":
                worker_services.worker_start_run(worker_id=worker_id)
            else:
                worker_services.worker_stop_run(worker_id=worker_id)
        finally:
            close_old_connections()

    threading.Thread(target=body, daemon=True).start()


def wait_for(worker_id, status: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Worker.objects.filter(id=worker_id, status=status).exists():
            return
        time.sleep(0.05)
    raise SystemExit(f"worker {worker_id} never became {status}")


def one_run(workspace) -> float:
    started = time.monotonic()
    worker = workspace_start(workspace=workspace, actor=workspace.owner)
    wait_for(worker.id, "ready")
    elapsed = time.monotonic() - started
    workspace_stop(workspace=workspace, actor=workspace.owner)
    wait_for(worker.id, "stopped")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--poll", type=float, default=None)
    args = parser.parse_args()
    if args.poll is not None:
        settings.NOTEBOOK_RUNTIME_START_POLL_SECONDS = args.poll
    settings.NOTEBOOK_RUNTIME_DEFAULT_BACKEND = "local"
    queueing._send = run_task
    ResourceClassFactory(id="bench-small", is_default=True, memory_limit="4Gi")
    workspace = WorkspaceFactory(name="start-bench")
    with tempfile.TemporaryDirectory() as tmp:
        backend = LocalBackend(Path(tmp) / "workspaces", grace_seconds=3)
        with registry.override("local", backend):
            times = [one_run(workspace) for _ in range(args.runs)]
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    print(f"runs: {len(times)}  poll: {settings.NOTEBOOK_RUNTIME_START_POLL_SECONDS}s")
    print(
        f"start -> running: p50 {statistics.median(times):.2f}s  "
        f"p95 {p95:.2f}s  max {times[-1]:.2f}s"
    )


if __name__ == "__main__":
    main()
