"""Benchmark: one reconcile_workers pass over 10,000 workers against a
backend that lists 10,000 runtimes.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/fleet_bench \\
        .venv/bin/python bench/reconcile_bench.py [--workers 10000] [--drift 100]

Scenario: every active worker has a runtime, except ``--drift`` whose runtime
vanished (-> failed) and ``--drift`` stopping workers whose runtime is gone
(-> stopped); the backend also lists ``2 * --drift`` runtimes of workers that
failed a moment ago (orphans inside the grace period: re-checked, left).
Prints backend API calls per pass (goal <= 3), SQL queries and wall time
(goal <= 3 s). A second pass measures the steady state. Numbers only.
"""

import argparse
import time
import uuid

import scratch_db  # noqa: F401 - sets up Django on a scratch database
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import ProjectFactory, ResourceClassFactory, UserFactory
from tests.fakes import FakeBackend
from workers import states
from workers.models import Worker
from workers.services import runtime, workers_reconcile


def seed(total: int, drift: int, backend: FakeBackend) -> None:
    """``total`` active workers, of which ``drift`` stopping and ``drift``
    ready ones lost their runtime; plus ``2 * drift`` workers that failed a
    moment ago whose runtimes are still listed (inside the orphan grace
    period), so the backend lists ``total`` runtimes."""
    klass = ResourceClassFactory(id="bench-small", is_default=True)
    owner = UserFactory(username=f"bench-{uuid.uuid4().hex[:6]}")
    project = ProjectFactory(personal_owner=owner)
    now = timezone.now()

    def worker(n: int, status: str) -> Worker:
        worker = Worker(
            name=f"bench-{n}",
            owner=owner,
            project=project,
            backend="local",
            status=status,
            status_changed_at=now,
            stopped_at=now if status == states.FAILED else None,
            resource_class=klass,
        )
        worker.runtime_ref = {
            "backend": "local",
            "worker_id": str(worker.id),
            "name": "w",
        }
        return worker

    active = [
        worker(n, states.STOPPING if n < drift else states.READY) for n in range(total)
    ]
    recent = [worker(n, states.FAILED) for n in range(2 * drift)]
    Worker.objects.bulk_create(active + recent, batch_size=2000)
    with backend._state() as state:
        for row in active[2 * drift :] + recent:
            state["runtimes"][str(row.id)] = {
                "name": "w",
                "phase": "running",
                "observes": 0,
            }


def one_pass(backend: FakeBackend, label: str) -> None:
    before = backend.calls.total()
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        report = workers_reconcile(backends=["local"])["local"]
        elapsed = time.perf_counter() - started
    calls = backend.calls.total() - before
    print(
        f"{label}: {elapsed:.2f} s wall, {calls} backend API call(s), "
        f"{len(queries)} SQL queries; {report}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=10_000)
    parser.add_argument("--drift", type=int, default=100)
    args = parser.parse_args()
    backend = FakeBackend()
    runtime.override_backend("local", backend)
    seed(args.workers, args.drift, backend)
    print(
        f"{args.workers} workers, backend lists {len(backend.runtime_ids())} runtimes"
    )
    one_pass(backend, "pass 1 (drift)")
    one_pass(backend, "pass 2 (steady)")


if __name__ == "__main__":
    main()
