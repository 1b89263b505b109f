"""End to end with a real runtime: a JupyterLab process launched by the
local backend through the services and Celery task bodies, probed until
ready over HTTP, then stopped until the backend confirms it is gone."""

import psutil
import pytest

from tests.factories import WorkspaceFactory
from tests.fakes import TaskRecorder
from tests.integration.lifecycle_support import committed
from workers import states
from workers.backends import registry
from workers.backends.local import LocalBackend
from workers.services import queueing
from workspaces.services import workspace_start, workspace_stop

pytestmark = [pytest.mark.django_db, pytest.mark.needs_postgres]


@pytest.fixture
def local_backend(tmp_path, settings, monkeypatch):
    settings.NOTEBOOK_RUNTIME_DEFAULT_BACKEND = "local"
    settings.NOTEBOOK_RUNTIME_START_POLL_SECONDS = 0.5
    settings.NOTEBOOK_RUNTIME_START_TIMEOUT_SECONDS = 120
    backend = LocalBackend(tmp_path / "workspaces", grace_seconds=3)
    with registry.override("local", backend):
        yield backend
    for ref in backend.list_managed():
        backend.terminate(ref)


def test_it_launches_a_real_jupyterlab_until_ready_and_stops_it(
    local_backend, default_class, monkeypatch
):
    tasks = TaskRecorder()
    monkeypatch.setattr(queueing, "_send", tasks)
    workspace = WorkspaceFactory()
    with committed():
        worker = workspace_start(workspace=workspace, actor=workspace.owner)
    tasks.run_all()
    worker.refresh_from_db()
    assert worker.status == states.READY, list(worker.events.values_list("reason"))
    assert worker.health == "ready" and worker.endpoint.startswith("http://127.0.0.1:")
    pid = worker.runtime_ref["extra"]["pid"]
    assert psutil.pid_exists(pid)
    cmdline = " ".join(psutil.Process(pid).cmdline())
    assert "cull_idle_timeout=3600" in cmdline and "cull_interval=300" in cmdline
    with committed():
        workspace_stop(workspace=workspace, actor=workspace.owner)
    tasks.run_all()
    worker.refresh_from_db()
    assert worker.status == states.STOPPED
    assert local_backend.list_managed() == []
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
