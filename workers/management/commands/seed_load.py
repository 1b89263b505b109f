"""``manage.py seed_load --workers N``: a realistic fleet for benchmarks.

Additive: each run adds N workers (and their events) to what is there, so a
benchmark can grow one fleet through 1k, 10k and 100k. Rows are made with
``bulk_create`` in batches; the owners, projects and workspaces they point at
are made once (fixed names) and reused. Most workers are history (stopped),
a few failed, about a tenth active, spread over the last 90 days.
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
from workers.models import Worker, WorkerEvent
from workspaces.models import Project, SchedulingQueue, Workspace

STATUS_WEIGHTS = {
    states.STOPPED: 80,
    states.FAILED: 8,
    states.READY: 6,
    states.BUSY: 2.5,
    states.STARTING: 2,
    states.STOPPING: 1.5,
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

    def handle(self, *args, **opts) -> None:
        rng = random.Random(opts["seed"])
        fleet = self._fleet(opts["users"], opts["projects"], rng)
        made = 0
        while made < opts["workers"]:
            size = min(opts["batch"], opts["workers"] - made)
            self._batch(size, fleet, rng)
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
    def _batch(self, size: int, fleet: Fleet, rng: random.Random) -> None:
        now = timezone.now()
        workers = [_worker(fleet, rng, now) for _ in range(size)]
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


def _worker(fleet: Fleet, rng: random.Random, now) -> Worker:
    status = _pick(rng, STATUS_WEIGHTS)
    backend = _pick(rng, BACKEND_WEIGHTS)
    ws = None if backend == "external" else rng.choice(fleet.workspaces)
    created = now - timedelta(seconds=rng.uniform(60, 90 * 86400))
    if status in states.ACTIVE_STATUSES:  # active ones are recent
        created = now - timedelta(seconds=rng.uniform(30, 3 * 86400))
    rc = ws.resource_class if ws else rng.choice(fleet.classes)
    changed = created + timedelta(seconds=rng.uniform(5, 3600))
    worker = Worker(
        id=uuid.uuid4(),
        workspace=ws,
        name=ws.name if ws else f"ext-{rng.randint(1, 999)}",
        owner=ws.owner if ws else rng.choice(fleet.users),
        space=ws.project if ws else rng.choice(fleet.projects),
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
    return worker


def _events(worker: Worker) -> list[WorkerEvent]:
    """The start, and the latest transition (enough for a timeline)."""
    start = WorkerEvent(
        worker=worker, at=worker.created_at, kind="transition", actor_type="user",
        actor_label=worker.owner.username, to_status=states.STARTING, reason="Launch",
    )  # fmt: skip
    if worker.status == states.STARTING:
        return [start]
    last = WorkerEvent(
        worker=worker, at=worker.status_changed_at, kind="transition",
        actor_type="system", actor_label="seed_load", from_status=states.READY,
        to_status=worker.status, reason=worker.error_detail,
    )  # fmt: skip
    return [start, last]
