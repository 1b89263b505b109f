"""``manage.py seed_load --workers N``: a realistic fleet for benchmarks.

Additive: each run adds N workers (and their events) to what is there, so a
benchmark can grow one fleet through 1k, 10k and 100k. Rows are made with
``bulk_create`` in batches; the owners, projects and workspaces they point at
are made once (fixed names) and reused. Most workers are history (stopped),
a few failed, and only workers of the last week still active.

Rows are inserted oldest first, batch by batch, as a real fleet's rows
arrive; ``--order random`` scatters them instead (active rows spread over
the whole table: the worst case for the heap reads behind the summary).
"""

import random
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from resource_classes.models import ResourceClass
from workers import states
from workers.models import Actor, EventKind, Worker, WorkerEvent
from workspaces.models import Project, SchedulingQueue, Workspace

HISTORY_DAYS = 90
RECENT_DAYS = 7  # workers younger than this may still be running
RECENT_WEIGHTS = {
    states.STOPPED: 40,
    states.FAILED: 5,
    states.READY: 30,
    states.BUSY: 12,
    states.STARTING: 8,
    states.STOPPING: 5,
}
HISTORY_WEIGHTS = {
    states.STOPPED: 90,
    states.FAILED: 9.5,
    states.STARTING: 0.2,  # stuck: these are the stale ones
    states.BUSY: 0.3,
}
BACKEND_WEIGHTS = {"kubernetes": 55, "docker": 30, "external": 10, "local": 5}
ERRORS = [
    ("image_pull_failed", "Back-off pulling image registry.example/team/nb:3.1"),
    ("unschedulable", "0/12 nodes are available: 12 Insufficient nvidia.com/gpu."),
    ("timeout", "Start timed out after 300 s"),
    ("gateway_unreachable", "Gateway https://gw.internal:8443 refused the connection"),
]
CLASSES = [
    dict(id="load-small", display_name="Small", cpu_request="500m", cpu_limit="2"),
    dict(id="load-medium", display_name="Medium", cpu_request="2", cpu_limit="4"),
    dict(id="load-large", display_name="Large", cpu_request="4", cpu_limit="8"),
]


@dataclass
class Fleet:
    users: list[User]
    projects: list[Project]
    workspaces: list[Workspace]
    classes: list[ResourceClass]


class Command(BaseCommand):
    help = "Add N realistic workers (mixed statuses, backends, owners, events)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workers", type=int, required=True)
        parser.add_argument("--batch", type=int, default=5000)
        parser.add_argument("--users", type=int, default=300)
        parser.add_argument("--projects", type=int, default=60)
        parser.add_argument("--seed", type=int, default=None)
        parser.add_argument("--order", choices=["time", "random"], default="time")

    def handle(self, *args, **opts) -> None:
        rng = random.Random(opts["seed"])
        fleet = self._fleet(opts["users"], opts["projects"], rng)
        made, total = 0, opts["workers"]
        span = HISTORY_DAYS * 86400
        while made < total:
            size = min(opts["batch"], total - made)
            window = (
                span * (total - made - size) / total,
                span * (total - made) / total,
            )
            if opts["order"] == "random":
                window = (0, span)
            self._batch(size, fleet, rng, window)
            made += size
            self.stdout.write(f"  {made}/{opts['workers']} workers")
        self.stdout.write(self.style.SUCCESS(f"Added {made} workers."))

    def _fleet(self, n_users: int, n_projects: int, rng: random.Random) -> Fleet:
        classes = [_resource_class(**spec) for spec in CLASSES]
        password = make_password(None)
        User.objects.bulk_create(
            [
                User(username=f"load-user-{i}", password=password)
                for i in range(n_users)
            ],
            ignore_conflicts=True,
        )
        users = list(User.objects.filter(username__startswith="load-user-"))
        projects = [_project(i, rng.choice(users)) for i in range(n_projects)]
        queue = SchedulingQueue.default()
        workspaces = [
            _workspace(project, user, rng.choice(classes), queue)
            for project in projects
            for user in rng.sample(users, k=min(6, len(users)))
        ]
        return Fleet(users, projects, workspaces, classes)

    @transaction.atomic
    def _batch(self, size: int, fleet: Fleet, rng: random.Random, window) -> None:
        now = timezone.now()
        workers = [_worker(fleet, rng, now, window) for _ in range(size)]
        if window != (0, HISTORY_DAYS * 86400):
            workers.sort(key=lambda w: w.created_at)
        Worker.objects.bulk_create(workers, batch_size=2000)
        events = [e for w in workers for e in _events(w)]
        WorkerEvent.objects.bulk_create(events, batch_size=5000)


def _resource_class(**spec) -> ResourceClass:
    defaults = dict(memory_request="1Gi", memory_limit="4Gi", **spec)
    defaults.pop("id")
    rc, _ = ResourceClass.objects.get_or_create(id=spec["id"], defaults=defaults)
    return rc


def _project(i: int, owner: User) -> Project:
    project, _ = Project.objects.get_or_create(
        slug=f"load-project-{i}",
        defaults={"name": f"Load project {i}", "personal_owner": owner},
    )
    return project


def _workspace(project, user, rc, queue) -> Workspace:
    ws, _ = Workspace.objects.get_or_create(
        project=project,
        name=f"nb-{user.username.rsplit('-', 1)[-1]}",
        defaults=dict(owner=user, image="jupyter/base-notebook:4.2", resource_class=rc,
                      queue=queue),
    )  # fmt: skip
    return ws


def _pick(rng: random.Random, weights: dict) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _worker(fleet: Fleet, rng: random.Random, now, window) -> Worker:
    """One worker ``window`` = (min, max) seconds old; its status fits its age."""
    age = rng.uniform(max(window[0], 20), window[1])
    recent = age < RECENT_DAYS * 86400
    status = _pick(rng, RECENT_WEIGHTS if recent else HISTORY_WEIGHTS)
    if recent and status == states.STARTING and rng.random() < 0.9:
        age = rng.uniform(20, 600)  # most starts finish within minutes
    backend = _pick(rng, BACKEND_WEIGHTS)
    ws = None if backend == "external" else rng.choice(fleet.workspaces)
    created = now - timedelta(seconds=age)
    rc = ws.resource_class if ws else rng.choice(fleet.classes)
    changed = created + timedelta(seconds=rng.uniform(5, 600))
    worker = Worker(
        id=uuid.uuid4(),
        workspace=ws,
        name=ws.name if ws else f"ext-{rng.randint(1, 999)}",
        owner=ws.owner if ws else rng.choice(fleet.users),
        project=ws.project if ws else rng.choice(fleet.projects),
        backend=backend,
        status=status,
        health="ready" if status in (states.READY, states.BUSY) else "",
        resource_class=rc,
        resource_snapshot=rc.snapshot(),
        created_at=created,
        started_at=created,
        status_changed_at=min(changed, now),
        last_activity_at=min(changed, now) if status != states.STARTING else None,
        runtime_ref={
            "backend": backend,
            "worker_id": "",
            "name": f"nb-{rng.getrandbits(32):x}",
        },
        gateway_metadata={"node": f"node-{rng.randint(1, 40)}", "zone": "eu-west-1a"},
        repository_scope=[f"git@example.org:team/repo-{rng.randint(1, 50)}.git"],
    )
    if status == states.FAILED or (status == states.STOPPING and rng.random() < 0.3):
        worker.error_code, worker.error_detail = rng.choice(ERRORS)
    if status in (states.STOPPED, states.FAILED):
        worker.stopped_at = worker.status_changed_at
    elif recent and status in (states.READY, states.BUSY):
        worker.last_activity_at = now - timedelta(seconds=rng.uniform(0, 1800))
        worker.health_checked_at = now - timedelta(seconds=rng.uniform(0, 60))
        worker.health_latency_ms = rng.randint(3, 80)
    if status == states.READY:
        worker.next_action = "idle stop"
        worker.next_action_at = (worker.last_activity_at or now) + timedelta(hours=1)
    elif worker.stop_failed:
        worker.next_action = "stop retry"
        worker.next_action_at = now + timedelta(seconds=rng.uniform(10, 300))
    return worker


def _events(worker: Worker) -> list[WorkerEvent]:
    """The start, and the latest transition (enough for a timeline)."""
    start = WorkerEvent(
        worker=worker, at=worker.created_at, kind=EventKind.TRANSITION, actor_type=Actor.USER,
        actor_label=worker.owner.username, to_status=states.STARTING, reason="Launch",
    )  # fmt: skip
    if worker.status == states.STARTING:
        return [start]
    last = WorkerEvent(
        worker=worker, at=worker.status_changed_at, kind=EventKind.TRANSITION,
        actor_type=Actor.SYSTEM, actor_label="seed_load", from_status=states.READY,
        to_status=worker.status, reason=worker.error_detail,
    )  # fmt: skip
    return [start, last]
