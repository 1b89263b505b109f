"""Builders shared by the setup-step lifecycle tests (local and container
backends): a workspace with a repository under a project's fetch policy,
a start run to its end, and what the start left in the database."""

from __future__ import annotations

import json

from tests.factories import WorkspaceFactory
from tests.fakes import TaskRecorder
from tests.integration.lifecycle_support import committed
from workers.models import Worker
from workers.secret_box import seal
from workers.services import queueing
from workspaces.models import FetchPolicy
from workspaces.services import workspace_start, workspace_stop


def workspace_with_repository(
    url: str,
    index_url: str,
    *,
    git_secret: str,
    mirror_secret: str,
    policy: str = FetchPolicy.MIRROR,
    git_hosts: str = "",
    **fields,
):
    """A workspace naming ``url``; its project installs from ``index_url``
    under ``policy`` with both secrets sealed (the git secret bound to
    ``git_hosts``), and allows its image."""
    workspace = WorkspaceFactory(repository_url=url, **fields)
    project = workspace.project
    project.image_allowlist = [*(project.image_allowlist or []), workspace.image]
    project.fetch_policy = policy
    project.package_mirror_url = index_url
    project.git_secret_sealed = seal(git_secret)
    project.git_secret_hosts = git_hosts
    project.mirror_secret_sealed = seal(mirror_secret)
    project.save()
    return workspace


def start_with_tasks(workspace, monkeypatch) -> Worker:
    """Start ``workspace`` as its owner and run the queued tasks to the end."""
    tasks = TaskRecorder()
    monkeypatch.setattr(queueing, "_send", tasks)
    with committed():
        worker = workspace_start(workspace=workspace, actor=workspace.owner)
    tasks.run_all()
    worker.refresh_from_db()
    return worker


def stop_with_tasks(workspace, monkeypatch) -> None:
    """Stop ``workspace`` as its owner and run the queued tasks to the end."""
    tasks = TaskRecorder()
    monkeypatch.setattr(queueing, "_send", tasks)
    with committed():
        workspace_stop(workspace=workspace, actor=workspace.owner)
    tasks.run_all()


def event_reasons(worker) -> list[str]:
    return list(worker.events.order_by("id").values_list("reason", flat=True))


def everything_stored(worker) -> str:
    """The worker's row and events as text, to look for secrets in."""
    events = list(worker.events.values("reason", "data"))
    row = Worker.objects.filter(pk=worker.pk).values().get()
    return json.dumps([events, row], default=str)
