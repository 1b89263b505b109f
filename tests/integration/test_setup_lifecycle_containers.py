"""A workspace with a repository started end to end on the container
backends: on docker (a real engine) the setup container's progress becomes
start events and the IDE's kernel runs the workspace's venv, with no
credential in the IDE container; on kubernetes (FakeKubeAPI over HTTP) a
failed init container ends the start as ``dependency_setup_failed`` with its
sanitized lines on the user's page."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import httpx
import pytest
from django.urls import reverse

from tests.backends.conftest import kube_backend
from tests.backends.fake_kube import FakeKubeAPI
from tests.conftest import docker_url, missing_service
from tests.integration.setup_lifecycle_support import (
    event_reasons,
    everything_stored,
    start_with_tasks,
    workspace_with_repository,
)
from tests.setup_support import PackageIndex, Remote, git, make_wheel
from workers import states
from workers.backends import kubernetes_setup, naming, registry
from workers.secret_box import unseal
from workers.services import starting

pytestmark = [pytest.mark.django_db, pytest.mark.needs_postgres]
GIT_SECRET = "deploy:ghtok-c0ffee1234"  # noqa: S105 - a test credential
MIRROR_SECRET = "bot:mirror-pw-beef5678"  # noqa: S105
SECRET_PARTS = ("ghtok-c0ffee1234", "mirror-pw-beef5678")
WHEELHOUSE = Path(os.environ.get("NOTEBOOK_FLEET_TEST_WHEELHOUSE", "/opt/pypi/files"))


@pytest.fixture
def remote(tmp_path):
    remote = Remote(tmp_path)
    remote.commit({"requirements.txt": "alpha\nbeta\n"})
    for path in [remote.bare, *remote.bare.rglob("*")]:  # the setup's UID reads it
        os.chown(path, 1000, 100, follow_symlinks=False)
    return remote


def _workspace(remote, index_url: str, **fields):
    return workspace_with_repository(
        remote.url,
        index_url,
        git_secret=GIT_SECRET,
        mirror_secret=MIRROR_SECRET,
        **fields,
    )


# --- docker ------------------------------------------------------------------


@pytest.fixture
def docker_backend(settings, remote):
    url = docker_url()
    if not url:
        missing_service("needs a Docker engine: set NOTEBOOK_RUNTIME_DOCKER_URL")
    import docker

    from tests.backends.docker_image import EXTRA_BINDS, LAUNCHER, ensure_image
    from workers.backends.docker import DockerBackend

    client = docker.DockerClient(base_url=url)
    settings.NOTEBOOK_RUNTIME_DEFAULT_BACKEND = "docker"
    settings.NOTEBOOK_RUNTIME_START_POLL_SECONDS = 0.3
    settings.NOTEBOOK_RUNTIME_START_TIMEOUT_SECONDS = 240
    settings.NOTEBOOK_RUNTIME_SETUP_ALLOW_LOCAL_REPOSITORIES = True
    settings.NOTEBOOK_RUNTIME_SETUP_KERNEL_PACKAGES = ["ipykernel"]
    cache = f"nbf-test-cache-{uuid.uuid4().hex[:8]}"
    backend = DockerBackend(
        url,
        network="host",
        launcher=LAUNCHER,
        extra_binds=(*EXTRA_BINDS, f"{remote.bare}:{remote.bare}:ro"),
        grace_seconds=3,
        setup_python=LAUNCHER[0],
        dependency_cache_volume=cache,
        unseal=unseal,
    )
    with registry.override("docker", backend):
        yield backend, ensure_image(client), client
    for ref in backend.list_managed():
        backend.terminate(ref)
    for volume in client.volumes.list():
        if volume.name == cache:
            volume.remove(force=True)


@pytest.mark.needs_docker
def test_docker_sets_up_then_the_kernel_runs_the_workspace_venv(
    docker_backend, remote, tmp_path, default_class, monkeypatch
):
    backend, image, client = docker_backend
    if not any(WHEELHOUSE.glob("ipykernel-*.whl")):
        missing_service(f"needs ipykernel wheels in {WHEELHOUSE}")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    make_wheel(wheels, "alpha")
    make_wheel(wheels, "beta")
    with PackageIndex(wheels, extra=(WHEELHOUSE,)) as index:
        workspace = _workspace(remote, index.url, image=image)
        worker = start_with_tasks(workspace, monkeypatch)
        assert worker.status == states.READY, event_reasons(worker)
        assert "Basic " in "".join(index.authorizations)  # the mirror's credentials
    reasons = event_reasons(worker)
    assert any(r.startswith("Setup: cloning") for r in reasons), reasons
    assert "Setup: installing 3 packages" in reasons  # alpha, beta, ipykernel
    head = git("rev-parse", "main", cwd=remote.work)
    assert worker.repository_scope == [f"{remote.url} @ {head}"]
    # The kernel named after the workspace runs the venv the setup made.
    api = f"{worker.endpoint}api"
    headers = {"Authorization": f"token {worker.access_token}"}
    specs = httpx.get(f"{api}/kernelspecs", headers=headers).json()["kernelspecs"]
    assert workspace.name in specs
    kernel = httpx.post(
        f"{api}/kernels", headers=headers, json={"name": workspace.name}, timeout=60
    ).json()
    ide = client.containers.get(worker.runtime_ref["name"])
    cmdlines = ide.exec_run(["sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"])
    assert "/home/jovyan/.venv/bin/python -m ipykernel_launcher -f " in (
        cmdlines.output.decode()
    ), kernel
    # No credential in the IDE container, the events or the worker row.
    assert not any(p in json.dumps(ide.attrs) for p in SECRET_PARTS)
    environ = ide.exec_run(["cat", "/proc/1/environ"]).output.decode()
    assert not any(p in environ for p in SECRET_PARTS)
    assert not any(p in everything_stored(worker) for p in SECRET_PARTS)


# --- kubernetes ----------------------------------------------------------------


@pytest.fixture
def kube(settings):
    api = FakeKubeAPI().start()
    settings.NOTEBOOK_RUNTIME_DEFAULT_BACKEND = "kubernetes"
    settings.NOTEBOOK_RUNTIME_START_POLL_SECONDS = 0.05
    settings.NOTEBOOK_RUNTIME_START_TIMEOUT_SECONDS = 60
    backend = kube_backend(api, unseal=unseal)
    with registry.override("kubernetes", backend):
        yield api, backend
    api.stop()


def test_kubernetes_init_container_failure_fails_the_start(
    kube, remote, default_class, monkeypatch, client
):
    api, backend = kube
    workspace = _workspace(remote, "https://mirror.example.org/simple")
    steps = iter(["running", "failed"])

    def kubelet(seconds):
        """What kubelet does between two polls: run the init container,
        which prints progress, then fails as the script does."""
        (name,) = api.names("pods")
        step = next(steps, "")
        log = "setup: cloning the repository\nsetup: installing 3 packages\n"
        if step == "running":
            api.logs[f"{name}/{kubernetes_setup.CONTAINER}"] = log
            state = {"running": {"startedAt": "2025-01-01T00:00:00Z"}}
            api.set_pod_status(name, phase="Pending", initContainerStatuses=[
                {"name": "setup", "ready": False, "state": state}])  # fmt: skip
        elif step == "failed":
            # The script redacts its secrets; the start redacts once more.
            message = (
                "setup failed: uv failed\n  | gamma-missing was not found at "
                f"https://{MIRROR_SECRET}@mirror.example.org/simple"
            )
            state = {"terminated": {"exitCode": 86, "message": message}}
            api.set_pod_status(name, phase="Failed", initContainerStatuses=[
                {"name": "setup", "ready": False, "state": state}])  # fmt: skip

    monkeypatch.setattr(starting, "sleep", kubelet)
    worker = start_with_tasks(workspace, monkeypatch)
    assert worker.status == states.FAILED, event_reasons(worker)
    assert worker.error_code == "dependency_setup_failed"
    assert "gamma-missing" in worker.error_detail
    assert "Setup: installing 3 packages" in event_reasons(worker)
    secret = naming.runtime_name(str(worker.id))
    assert not api.get("secrets", secret)  # removed with the failed runtime
    assert not any(p in everything_stored(worker) for p in SECRET_PARTS)
    client.force_login(workspace.owner)
    page = client.get(reverse("workspaces:detail", args=[workspace.id]))
    html = page.content.decode()
    assert "Dependency setup failed" in html and "gamma-missing" in html
    assert not any(p in html for p in SECRET_PARTS)
