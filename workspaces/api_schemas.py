"""The shapes of the workspace API (``/api/v1/ide``), as the OpenAPI
document publishes them. Every text that may carry a secret (error detail,
event reasons) is sanitized with its worker's access token here."""

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from ninja import Field, Schema

from workers import states
from workers.models import Actor, EventKind, Worker
from workers.sanitize import sanitize
from workers.states import WorkspaceStatus
from workspaces.models import Workspace
from workspaces.selectors import workspace_state

WorkerStatus = StrEnum("WorkerStatus", {s.upper(): s for s in states.STATUSES})


class Message(Schema):
    detail: str = Field(description="What went wrong and what to do.")


class Refusal(Message):
    limit: str = Field(
        description="The rule or limit hit, e.g. max_workers_per_user or "
        "project_gpu_quota."
    )
    errors: dict[str, list[str]] = Field(
        default_factory=dict,
        description="The same message at the launch-form field it concerns.",
    )


class InvalidInput(Message):
    errors: dict[str, list[str]] = Field(
        description="Messages per field; __all__ for the request as a whole."
    )


class ProjectRef(Schema):
    id: UUID
    name: str
    slug: str


class MountOut(Schema):
    volume: str
    mount_path: str

    @staticmethod
    def resolve_volume(mount) -> str:
        return mount.volume.name


class ErrorOut(Schema):
    code: str
    detail: str


class WorkerOut(Schema):
    """The workspace's current (newest) worker: one start of its runtime."""

    id: UUID
    status: WorkerStatus
    health: str
    created_at: datetime
    ready_at: datetime | None
    stopped_at: datetime | None
    last_activity_at: datetime | None
    error: ErrorOut | None

    @staticmethod
    def resolve_error(worker: Worker) -> dict | None:
        if not worker.error_code and not worker.error_detail:
            return None
        return {
            "code": worker.error_code,
            "detail": sanitize(
                worker.error_detail, extra_secrets=(worker.access_token,)
            ),
        }


class WorkspaceOut(Schema):
    id: UUID
    name: str
    status: WorkspaceStatus
    url: str = Field(description="Where Open goes: /w/<id>/ and the IDE's path.")
    project: ProjectRef
    ide_kind: Workspace.IdeKind
    proxy_path: str
    image: str
    root_shell: bool
    queue: str
    resource_class: str
    gpu_count: int
    gpu_model: str
    gpu_sm_percentage: int
    gpu_units: float = Field(description="GPU count × SM% / 100.")
    cpu_limit: str
    memory_limit: str
    mounts: list[MountOut]
    created_at: datetime
    worker: WorkerOut | None

    @staticmethod
    def resolve_status(workspace: Workspace) -> str:
        return workspace_state(workspace)[0]

    @staticmethod
    def resolve_worker(workspace: Workspace) -> Worker | None:
        return workspace_state(workspace)[1]

    @staticmethod
    def resolve_url(workspace: Workspace) -> str:
        return workspace.open_url

    @staticmethod
    def resolve_queue(workspace: Workspace) -> str:
        return workspace.queue.name

    @staticmethod
    def resolve_resource_class(workspace: Workspace) -> str:
        return workspace.resource_class_id

    @staticmethod
    def resolve_gpu_units(workspace: Workspace) -> float:
        return float(workspace.effective_gpu_units)

    @staticmethod
    def resolve_mounts(workspace: Workspace) -> list:
        return list(workspace.mounts.all())


class EventOut(Schema):
    id: int
    worker_id: UUID
    at: datetime
    kind: EventKind
    actor_type: Actor
    actor_label: str
    from_status: str
    to_status: str
    reason: str

    @staticmethod
    def resolve_reason(event) -> str:
        return sanitize(event.reason, extra_secrets=(event.worker_token,))


class WorkspaceFilters(Schema):
    status: WorkspaceStatus | None = Field(None, description="Only this state.")
    project: UUID | None = Field(None, description="Only this project's (its id).")


class MountIn(Schema):
    volume: int = Field(description="The id of one of the project's volumes.")
    path: str = Field(description="Absolute mount path, e.g. /data.")


class WorkspaceIn(Schema):
    """A new workspace, validated by the launch form (same rules and messages
    as /workspaces/new); left out, a field takes the form's default."""

    project: UUID | None = Field(None, description="Default: your personal project.")
    name: str = Field(description="DNS-safe, unique in the project.")
    ide_kind: Workspace.IdeKind = Workspace.IdeKind.JUPYTERLAB
    proxy_path: str = Field("", description="Custom images: where Open goes.")
    image: str = Field(description="One of the project's allowed images.")
    root_shell: bool = False
    queue: str | None = Field(None, description="Queue name. Default: the default.")
    resource_class: str | None = Field(None, description="Default: the default.")
    gpu_count: int = 0
    gpu_model: str = ""
    gpu_sm_percentage: int = 100
    cpu_limit: str = Field("", description="Empty: the plan's default.")
    memory_limit: str = Field("", description="Empty: the plan's default.")
    mounts: list[MountIn] = Field(default_factory=list)
