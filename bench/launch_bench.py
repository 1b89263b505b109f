"""Benchmark: 500 launch requests as fast as the launch service takes them.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/fleet_bench \\
        .venv/bin/python bench/launch_bench.py [--requests 500] [--threads 8]

100 users with one personal project each (2.0 GPUs of quota, plan allows
RTX 5090) and 5 one-GPU workspaces each; platform capacity 150 RTX 5090.
``--threads`` request threads call ``workspace_start`` concurrently through
the real services and the (in-memory) task queue. Prints accepted and
refused-by-limit counts, wall time (goal: all answered within 5 s), request
latency p50/p95, and checks that nothing is over-allocated. Numbers only.
"""

import argparse
import statistics
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import scratch_db  # noqa: F401 - sets up Django on a scratch database
from django.conf import settings
from django.db.models import Count, Max, Sum

from tests.factories import (
    ProjectFactory,
    ResourceClassFactory,
    UserFactory,
    WorkspaceFactory,
)
from workers import states
from workers.models import Worker
from workers.services import LaunchRefused
from workspaces.models import Plan
from workspaces.services import workspace_start

CAPACITY = 150


def seed(requests: int) -> list:
    ResourceClassFactory(id="bench-small", is_default=True)
    plan, _ = Plan.objects.get_or_create(
        name="bench-gpu", defaults={"allowed_gpu_models": ["RTX 5090"]}
    )
    workspaces = []
    for n in range(requests // 5):
        owner = UserFactory(username=f"launch-{n}")
        project = ProjectFactory(personal_owner=owner, plan=plan, gpu_quota=Decimal(2))
        workspaces += [
            WorkspaceFactory(project=project, gpu_count=1, gpu_model="RTX 5090")
            for _ in range(5)
        ]
    return workspaces


def launch(workspace) -> tuple[str, float]:
    started = time.perf_counter()
    try:
        workspace_start(workspace=workspace, actor=workspace.owner)
        outcome = "accepted"
    except LaunchRefused as refused:
        outcome = refused.limit
    return outcome, time.perf_counter() - started


def check_allocation() -> None:
    allocated = Worker.objects.filter(status__in=states.ALLOCATED_STATUSES)
    per_user = allocated.values("owner").annotate(n=Count("id"))
    per_project = allocated.values("project").annotate(
        units=Sum("gpu_units"), quota=Max("project__gpu_quota")
    )
    total = allocated.aggregate(units=Sum("gpu_units"))["units"] or 0
    limit = settings.NOTEBOOK_RUNTIME_MAX_WORKERS_PER_USER
    assert all(row["n"] <= limit for row in per_user), "per-user limit exceeded"
    assert all(r["units"] <= r["quota"] for r in per_project), "quota exceeded"
    assert total <= CAPACITY, "GPU capacity exceeded"
    print(f"no over-allocation: {total} of {CAPACITY} GPUs, quotas and limits hold")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    settings.NOTEBOOK_RUNTIME_GPU_CAPACITY = {"RTX 5090": CAPACITY}
    workspaces = seed(args.requests)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.threads) as pool:
        results = list(pool.map(launch, workspaces))
    wall = time.perf_counter() - started
    latencies = sorted(latency for _, latency in results)
    print(f"{len(results)} requests, {args.threads} threads: {wall:.2f} s wall")
    print("outcomes:", dict(Counter(outcome for outcome, _ in results)))
    p95 = latencies[int(len(latencies) * 0.95) - 1]
    print(
        f"latency p50 {statistics.median(latencies) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms"
    )
    check_allocation()


if __name__ == "__main__":
    main()
