"""Demo data for `manage.py seed_demo`: personas, classes, projects, workers.

Idempotent: every row has a fixed natural key or a uuid5 id, so a second run
finds what the first made. Demo workers are historical rows on the docker,
kubernetes and external backends; they are not backed by real runtimes. Each
carries the launch spec its workspace gets today (built by the same code as a
real start), so "Start again" reads it and says why its backend cannot run
here; new workspaces start on the default backend (local: a JupyterLab
process), so alice can start one for real.

The periodic reapers act on these rows like on any others. The demo plan's
window is opened around the time of seeding so the plan-window reaper leaves
the plan-bound rows running; the stale start is failed by ``cleanup_stale``'s
first pass (a minute after the server starts), and its timeline says so.
"""

import json
import secrets
import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth.models import Permission
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from resource_classes.models import ResourceClass
from resource_classes.services import resource_classes_load
from workers.models import Actor, EventKind, Worker, WorkerEvent
from workspaces.models import (
    Group,
    Plan,
    Project,
    SchedulingQueue,
    Volume,
    Workspace,
    WorkspaceMount,
)
from workspaces.services import workspace_launch_request

NAMESPACE = uuid.UUID("6f1d1f0e-8a59-4f7e-9d8b-2f3c9a1e0b42")

RESOURCE_CLASSES = [
    {
        "id": "small",
        "display_name": "Small",
        "default": True,
        "cpu_request": "500m",
        "cpu_limit": "2",
        "memory_request": "1Gi",
        "memory_limit": "4Gi",
        "workspace_storage": "10Gi",
        "temp_storage": "1Gi",
    },
    {
        "id": "medium",
        "display_name": "Medium",
        "cpu_request": "2",
        "cpu_limit": "4",
        "memory_request": "8Gi",
        "memory_limit": "16Gi",
        "workspace_storage": "50Gi",
        "temp_storage": "10Gi",
    },
    {
        "id": "gpu",
        "display_name": "GPU (1× NVIDIA)",
        "cpu_request": "4",
        "cpu_limit": "8",
        "memory_request": "32Gi",
        "memory_limit": "64Gi",
        "gpu_count": 1,
        "gpu_resource_name": "nvidia.com/gpu",
        "workspace_storage": "100Gi",
        "temp_storage": "20Gi",
        "idle_timeout_seconds": 1800,
    },
]
# Who may do what: README "Who may do what".
PERSONAS = [
    ("admin", {"is_staff": True, "is_superuser": True, "first_name": "Ada"}),
    ("operator", {"is_staff": True, "first_name": "Otto"}),
    ("manager", {"first_name": "Morgan"}),
    ("alice", {"first_name": "Alice"}),
    ("bob", {"first_name": "Bob"}),
]


def demo_id(name: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, name)


def _credentials() -> dict[str, str]:
    """Passwords are generated once and kept in var/ (0600) so reruns can print them."""
    path = settings.VAR_DIR / "demo-credentials.json"
    known = json.loads(path.read_text()) if path.exists() else {}
    for username, _ in PERSONAS:
        known.setdefault(username, secrets.token_urlsafe(12))
    path.write_text(json.dumps(known, indent=2))
    path.chmod(0o600)
    return known


def seed_personas() -> dict[str, User]:
    passwords = _credentials()
    users = {}
    for username, fields in PERSONAS:
        user, created = User.objects.get_or_create(
            username=username, defaults={"email": f"{username}@example.org", **fields}
        )
        if created or not user.check_password(passwords[username]):
            user.set_password(passwords[username])
            user.save(update_fields=["password"])
        users[username] = user
    users["manager"].user_permissions.add(Permission.objects.get(codename="manage_ide"))
    # Reads the console, cannot act on workers.
    users["operator"].user_permissions.add(
        Permission.objects.get(
            content_type__app_label="workers", codename="view_worker"
        )
    )
    return users


PLAN_TIMEZONE = "Europe/Berlin"
WEEKDAY_HOURS = {"days": [0, 1, 2, 3, 4], "start": "08:00", "end": "20:00"}


def demo_window_rules(now: datetime) -> list[dict]:
    """The plan's weekday hours plus a session from an hour before seeding
    to eight hours after (renewed on every run): a demo started at night or
    at a weekend would otherwise see its plan-bound workers stopped by the
    plan-window reaper within a minute, and the countdown banner has a
    deadline to count down to."""
    start = now.astimezone(ZoneInfo(PLAN_TIMEZONE)) - timedelta(hours=1)
    end = start + timedelta(hours=9)
    session = {"days": [start.weekday()], "start": f"{start:%H:%M}"}
    return [WEEKDAY_HOURS, {**session, "end": f"{end:%H:%M}"}]


def seed_platform(users: dict[str, User]) -> dict:
    demo_classes = [c["id"] for c in RESOURCE_CLASSES]
    if ResourceClass.objects.filter(pk__in=demo_classes).count() != len(demo_classes):
        resource_classes_load(RESOURCE_CLASSES)
    default_queue = SchedulingQueue.default()
    interactive, _ = SchedulingQueue.objects.get_or_create(
        name="interactive",
        defaults={
            "display_name": "Interactive",
            "priority": 100,
            "deserved_gpu_limit": Decimal(4),
        },
    )
    batch, _ = SchedulingQueue.objects.get_or_create(
        name="batch",
        defaults={"display_name": "Batch", "priority": 10, "preemptible": True},
    )
    plan, _ = Plan.objects.get_or_create(
        name="Research weekdays",
        defaults={
            "allowed_gpu_models": ["RTX 5090", "RTX 6000 Pro"],
            "default_cpu_limit": "4",
            "default_memory_limit": "16Gi",
            "window_kind": "weekly",
            "window_timezone": PLAN_TIMEZONE,
        },
    )
    plan.window_rules = demo_window_rules(timezone.now())
    plan.save(update_fields=["window_rules"])
    plan.queues.add(interactive, batch)
    team, _ = Group.objects.get_or_create(
        slug="ml-team", defaults={"name": "ML Team", "allow_root": True}
    )
    team.members.add(users["manager"], users["alice"], users["bob"])
    personal, _ = Project.objects.get_or_create(
        slug="alice-personal",
        defaults={
            "id": demo_id("project:alice"),
            "name": "Alice (personal)",
            "personal_owner": users["alice"],
            "gpu_quota": Decimal(1),
            "image_allowlist": [
                "jupyter/base-notebook:2024.10",
                "codercom/code-server:4.93.1",
            ],
        },
    )
    personal.members.add(users["alice"])
    group_project, _ = Project.objects.get_or_create(
        slug="ml-team",
        defaults={
            "id": demo_id("project:ml-team"),
            "name": "ML Team",
            "group": team,
            "gpu_quota": Decimal(4),
            "allow_root": True,
            "plan": plan,
            "image_allowlist": [
                "jupyter/pytorch-notebook:cuda12-2024.10",
                "jupyter/base-notebook:2024.10",
                "codercom/code-server:4.93.1",
            ],
        },
    )
    group_project.members.add(users["manager"], users["alice"], users["bob"])
    for project, name, size in [
        (personal, "alice-home", "20Gi"),
        (group_project, "ml-data", "500Gi"),
        (group_project, "ml-scratch", "100Gi"),
    ]:
        Volume.objects.get_or_create(
            project=project, name=name, defaults={"size": size}
        )
    return {
        "personal": personal,
        "group": group_project,
        "default_queue": default_queue,
        "interactive": interactive,
        "batch": batch,
    }


def seed_workspaces(users, platform) -> dict[str, Workspace]:
    classes = {rc.id: rc for rc in ResourceClass.objects.all()}
    specs = [
        (
            "analysis",
            users["alice"],
            platform["personal"],
            "jupyterlab",
            "jupyter/base-notebook:2024.10",
            platform["default_queue"],
            "small",
            0,
            "",
        ),
        (
            "train-llm",
            users["alice"],
            platform["group"],
            "jupyterlab",
            "jupyter/pytorch-notebook:cuda12-2024.10",
            platform["interactive"],
            "gpu",
            1,
            "RTX 5090",
        ),
        (
            "vscode-dev",
            users["bob"],
            platform["group"],
            "code-server",
            "codercom/code-server:4.93.1",
            platform["default_queue"],
            "medium",
            0,
            "",
        ),
        (
            "reports",
            users["bob"],
            platform["group"],
            "jupyterlab",
            "jupyter/base-notebook:2024.10",
            platform["default_queue"],
            "small",
            0,
            "",
        ),
        (
            "sweep",
            users["bob"],
            platform["group"],
            "jupyterlab",
            "jupyter/pytorch-notebook:cuda12-2024.10",
            platform["batch"],
            "gpu",
            1,
            "RTX 6000 Pro",
        ),
    ]
    workspaces = {}
    for name, owner, project, kind, image, queue, rc, gpus, model in specs:
        ws, _ = Workspace.objects.get_or_create(
            project=project,
            name=name,
            defaults={
                "id": demo_id(f"workspace:{name}"),
                "owner": owner,
                "ide_kind": kind,
                "image": image,
                "queue": queue,
                "resource_class": classes[rc],
                "gpu_count": gpus,
                "gpu_model": model,
                "gpu_sm_percentage": 50 if name == "sweep" else 100,
            },
        )
        workspaces[name] = ws
    data = Volume.objects.get(project=platform["group"], name="ml-data")
    WorkspaceMount.objects.get_or_create(
        workspace=workspaces["train-llm"], mount_path="/data", defaults={"volume": data}
    )
    return workspaces


# (workspace, worker key, backend, status, age, extra fields)
DEMO_WORKERS = [
    ("reports", "reports-ready", "docker", "ready", timedelta(hours=2), {}),
    ("train-llm", "train-busy", "kubernetes", "busy", timedelta(minutes=40), {}),
    (
        "vscode-dev",
        "vscode-starting",
        "kubernetes",
        "starting",
        timedelta(minutes=1),
        {},
    ),
    ("sweep", "sweep-stale", "kubernetes", "starting", timedelta(hours=3), {}),
    (
        "vscode-dev",
        "vscode-stop-failed",
        "external",
        "stopping",
        timedelta(hours=5),
        {
            "error_code": "gateway_unreachable",
            "error_detail": "DELETE https://gateway.internal/runtimes/ab12 timed out after 30s "
            "(Authorization: Bearer [REDACTED])",
        },
    ),
    ("analysis", "analysis-stopped", "docker", "stopped", timedelta(days=1), {}),
    (
        "sweep",
        "sweep-failed",
        "kubernetes",
        "failed",
        timedelta(hours=6),
        {
            "error_code": "image_pull_failed",
            "error_detail": 'Back-off pulling image "jupyter/pytorch-notebook:cuda12-2024.10": '
            "ErrImagePull: registry credentials for https://[REDACTED]@registry.example "
            "were rejected",
        },
    ),
]


def _status_timestamps(status: str, created, now) -> dict:
    fields = {
        "created_at": created,
        "started_at": created,
        "status_changed_at": created,
    }
    if status in ("ready", "busy", "stopping", "stopped"):
        fields.update(
            ready_at=created + timedelta(seconds=35),
            last_activity_at=now - timedelta(minutes=3),
        )
        fields["status_changed_at"] = created + timedelta(seconds=35)
    if status == "stopped":
        fields.update(
            stopped_at=created + timedelta(hours=2),
            status_changed_at=created + timedelta(hours=2),
        )
    if status in ("failed", "stopping"):
        fields["status_changed_at"] = created + timedelta(minutes=4)
    return fields


# Said in the timeline of rows whose state the reapers change soon after boot.
DEMO_NOTES = {
    "sweep-stale": "Demo: this start's task was lost, so the worker is stale. "
    "cleanup_stale fails it on its first pass, a minute after the server starts.",
}


def _launch_spec(ws: Workspace, worker_id: uuid.UUID) -> dict:
    """The spec a start of ``ws`` stores, as ``workspace_start`` builds it."""
    request = workspace_launch_request(
        workspace=ws, project=ws.project, plan=ws.project.plan
    )
    return replace(request.spec, worker_id=str(worker_id)).to_json()


def seed_workers(workspaces: dict[str, Workspace]) -> list[Worker]:
    now = timezone.now()
    made = []
    for ws_name, key, backend, status, age, extra in DEMO_WORKERS:
        ws = workspaces[ws_name]
        rc = ws.resource_class
        worker_id = demo_id(f"worker:{key}")
        spec = _launch_spec(ws, worker_id)
        worker, created = Worker.objects.get_or_create(
            id=worker_id,
            defaults={
                "launch_spec": spec,
                "workspace": ws,
                "name": ws.name,
                "owner": ws.owner,
                "project": ws.project,
                "backend": backend,
                "status": status,
                "resource_class": rc,
                "resource_snapshot": rc.snapshot(),
                "gpu_units": ws.effective_gpu_units,
                "gpu_model": ws.gpu_model,
                "queue_name": ws.queue.name,
                "queue_priority": ws.queue.priority,
                "preemptible": ws.queue.preemptible,
                "plan_bound": not ws.queue.is_default
                and ws.project.plan_id is not None,
                "repository_scope": [
                    f"git@example.org:{ws.project.slug}/{ws.name}.git"
                ],
                "gateway_metadata": {
                    "demo": True,
                    "gateway": f"{backend}-gateway-1",
                    "node": "gpu-node-3" if ws.gpu_count else "cpu-node-1",
                },
                # Loopback, port 9 (discard): nothing listens, so a probe or
                # the proxy is refused at once and no name is ever resolved.
                "endpoint": f"http://127.0.0.1:9{ws.base_url}",
                **_status_timestamps(status, now - age, now),
                **extra,
            },
        )
        if created:
            _seed_events(worker, note=DEMO_NOTES.get(key, ""))
        elif not worker.launch_spec:  # seeded before demo rows had a spec
            Worker.objects.filter(pk=worker.pk).update(launch_spec=spec)
        made.append(worker)
    _created_before_their_workers(workspaces.values())
    return made


def _created_before_their_workers(workspaces) -> None:
    """A workspace's history goes back a day: it must not read as created
    after its first start."""
    for ws in workspaces:
        first = ws.workers.order_by("created_at").values_list("created_at", flat=True)
        if first and ws.created_at > first[0]:
            created = first[0] - timedelta(minutes=5)
            Workspace.objects.filter(pk=ws.pk).update(created_at=created)


def _seed_events(worker: Worker, *, note: str) -> None:
    path = {
        "starting": ["starting"],
        "ready": ["starting", "ready"],
        "busy": ["starting", "ready", "busy"],
        "stopping": ["starting", "ready", "stopping"],
        "stopped": ["starting", "ready", "stopping", "stopped"],
        "failed": ["starting", "failed"],
    }
    previous = ""
    for step, status in enumerate(path[worker.status]):
        WorkerEvent.objects.create(
            worker=worker,
            at=worker.created_at + timedelta(seconds=20 * step),
            kind=EventKind.TRANSITION,
            actor_type=Actor.USER if step == 0 else "system",
            actor=worker.owner if step == 0 else None,
            actor_label=worker.owner.username if step == 0 else "start_worker",
            from_status=previous,
            to_status=status,
            reason=worker.error_detail if status == "failed" else "demo data",
        )
        previous = status
    if note:
        WorkerEvent.objects.create(
            worker=worker,
            at=worker.created_at + timedelta(seconds=20 * len(path[worker.status])),
            kind=EventKind.AUTOMATION,
            actor_type=Actor.SYSTEM,
            actor_label="seed_demo",
            reason=note,
        )


@transaction.atomic
def seed_demo() -> dict[str, str]:
    """Create or find all demo rows; returns the personas' passwords."""
    users = seed_personas()
    platform = seed_platform(users)
    workspaces = seed_workspaces(users, platform)
    seed_workers(workspaces)
    return _credentials()
