"""A workspace with a repository, started end to end on the local backend:
the setup step clones and installs before a real JupyterLab starts, its
progress becomes start events, a failure ends the start as
``dependency_setup_failed`` on the user's page, and the project's secrets
reach neither events, pages nor the runtime's environment."""

import json
import os
import subprocess
from pathlib import Path

import httpx
import psutil
import pytest
from django.urls import reverse

from tests.conftest import missing_service
from tests.integration.setup_lifecycle_support import (
    event_reasons,
    everything_stored,
    start_with_tasks,
    stop_with_tasks,
    workspace_with_repository,
)
from tests.setup_support import (
    GitHttpServer,
    PackageIndex,
    Remote,
    alpha_beta_index,
    git,
    make_wheel,
)
from workers import states
from workers.backends import registry
from workers.backends.local import LocalBackend
from workers.secret_box import seal, unseal
from workspaces.models import FetchPolicy

pytestmark = [pytest.mark.django_db, pytest.mark.needs_postgres]
GIT_SECRET = "deploy:ghtok-4c3b2a190817"  # noqa: S105 - a test credential
MIRROR_SECRET = "bot:mirror-pw-5e6f7a8b"  # noqa: S105


@pytest.fixture
def local_backend(tmp_path, settings):
    settings.NOTEBOOK_RUNTIME_DEFAULT_BACKEND = "local"
    settings.NOTEBOOK_RUNTIME_START_POLL_SECONDS = 0.3
    settings.NOTEBOOK_RUNTIME_START_TIMEOUT_SECONDS = 180
    settings.NOTEBOOK_RUNTIME_SETUP_ALLOW_LOCAL_REPOSITORIES = True
    settings.NOTEBOOK_RUNTIME_SETUP_KERNEL_PACKAGES = []
    backend = LocalBackend(
        tmp_path / "workspaces",
        grace_seconds=3,
        dependency_cache_dir=tmp_path / "cache",
        unseal=unseal,
    )
    with registry.override("local", backend):
        yield backend
    for ref in backend.list_managed():
        backend.terminate(ref)


@pytest.fixture
def index(tmp_path):
    with alpha_beta_index(tmp_path) as index:
        yield index


@pytest.fixture
def remote(tmp_path):
    remote = Remote(tmp_path)
    remote.commit({"requirements.txt": "alpha\nbeta\n"})
    return remote


def _workspace(remote, index, *, policy=FetchPolicy.MIRROR):
    return workspace_with_repository(
        remote.url,
        index.url,
        git_secret=GIT_SECRET,
        mirror_secret=MIRROR_SECRET,
        policy=policy,
    )


def test_it_clones_installs_and_starts_with_the_secrets_kept_out(
    local_backend, remote, index, default_class, monkeypatch, client
):
    workspace = _workspace(remote, index)
    worker = start_with_tasks(workspace, monkeypatch)
    reasons = event_reasons(worker)
    assert worker.status == states.READY, reasons
    assert any(r.startswith("Setup: cloning") for r in reasons), reasons
    assert "Setup: installing 2 packages" in reasons
    head = git("rev-parse", "main", cwd=remote.work)
    assert f"Setup: checked out {head} of {remote.url}" in reasons
    assert worker.repository_scope == [f"{remote.url} @ {head}"]
    workdir = local_backend.workspaces_dir / str(workspace.id)
    assert (workdir / "remote" / "requirements.txt").is_file()
    assert (workdir / ".venv/lib").exists()
    assert "Basic " in "".join(index.authorizations)  # the mirror's credentials
    runtime_env = psutil.Process(worker.runtime_ref["extra"]["pid"]).environ()
    assert not [k for k in runtime_env if k.startswith("NOTEBOOK_FLEET_SETUP")]
    assert GIT_SECRET not in json.dumps(runtime_env)
    assert MIRROR_SECRET not in json.dumps(runtime_env)
    stored = everything_stored(worker)
    assert "ghtok-4c3b2a190817" not in stored and "mirror-pw-5e6f7a8b" not in stored
    log = local_backend.logs(local_backend.list_managed()[0], tail=500)
    assert "ghtok-4c3b2a190817" not in log and "mirror-pw-5e6f7a8b" not in log


def test_offline_with_a_missing_package_fails_the_start_with_its_name(
    local_backend, remote, index, default_class, monkeypatch, client
):
    warm = start_with_tasks(_workspace(remote, index), monkeypatch)  # fills the cache
    assert warm.status == states.READY, event_reasons(warm)
    remote.commit({"requirements.txt": "alpha\ngamma-missing\n"})
    index.requests.clear()
    workspace = _workspace(remote, index, policy=FetchPolicy.OFFLINE)
    worker = start_with_tasks(workspace, monkeypatch)
    assert worker.status == states.FAILED, event_reasons(worker)
    assert worker.error_code == "dependency_setup_failed"
    assert "gamma-missing" in worker.error_detail
    assert index.requests == []
    client.force_login(workspace.owner)
    page = client.get(reverse("workspaces:detail", args=[workspace.id]))
    html = page.content.decode()
    assert "Dependency setup failed" in html and "gamma-missing" in html
    assert "ghtok-4c3b2a190817" not in html and "mirror-pw-5e6f7a8b" not in html


WHEELHOUSE = Path(os.environ.get("NOTEBOOK_FLEET_TEST_WHEELHOUSE", "/opt/pypi/files"))


def test_the_ide_runs_the_workspace_kernel_from_its_venv(
    local_backend, remote, tmp_path, default_class, monkeypatch, settings
):
    if not any(WHEELHOUSE.glob("ipykernel-*.whl")):
        # Locally a skip with the reason; in CI a failure (the machine's
        # wheel mirror is part of what CI must have).
        missing_service(
            f"needs ipykernel wheels in {WHEELHOUSE} (NOTEBOOK_FLEET_TEST_WHEELHOUSE)"
        )
    settings.NOTEBOOK_RUNTIME_SETUP_KERNEL_PACKAGES = ["ipykernel"]
    wheels = tmp_path / "kernel-wheels"
    wheels.mkdir()
    make_wheel(wheels, "alpha")
    make_wheel(wheels, "beta")
    with PackageIndex(wheels, extra=(WHEELHOUSE,)) as index:
        workspace = _workspace(remote, index)
        worker = start_with_tasks(workspace, monkeypatch)
    assert worker.status == states.READY, event_reasons(worker)
    api = f"{worker.endpoint}api"
    headers = {"Authorization": f"token {worker.access_token}"}
    specs = httpx.get(f"{api}/kernelspecs", headers=headers).json()["kernelspecs"]
    assert workspace.name in specs
    kernel = httpx.post(
        f"{api}/kernels", headers=headers, json={"name": workspace.name}, timeout=60
    ).json()
    venv_python = str(
        local_backend.workspaces_dir / str(workspace.id) / ".venv/bin/python"
    )
    runtime = psutil.Process(worker.runtime_ref["extra"]["pid"])
    kernels = [
        p
        for p in runtime.children(recursive=True)
        if kernel["id"] in " ".join(p.cmdline())
    ]
    assert kernels and kernels[0].cmdline()[0] == venv_python
    imported = subprocess.run(  # noqa: S603
        [venv_python, "-c", "import alpha, beta, ipykernel"], check=False
    )
    assert imported.returncode == 0


def test_a_private_repository_takes_the_project_token_and_refuses_a_wrong_one(
    local_backend, remote, index, tmp_path, default_class, monkeypatch, client
):
    """Over git's smart HTTP behind basic auth: the project's token clones
    and never shows; once replaced by a wrong one, the next start fails as a
    dependency setup failure in plain words and the checkout stays as it was."""
    user, password = GIT_SECRET.split(":")
    with GitHttpServer(tmp_path, username=user, password=password) as server:
        url = server.url(remote.bare)
        workspace = workspace_with_repository(
            url,
            index.url,
            git_secret=GIT_SECRET,
            mirror_secret=MIRROR_SECRET,
            git_hosts=server.host,
        )
        worker = start_with_tasks(workspace, monkeypatch)
        assert worker.status == states.READY, event_reasons(worker)
        assert worker.launch_spec["setup"]["git_secret_hosts"] == [server.host]
        head = git("rev-parse", "main", cwd=remote.work)
        assert worker.repository_scope == [f"{url} @ {head}"]
        assert server.expected in server.authorizations
        runtime_env = json.dumps(
            psutil.Process(worker.runtime_ref["extra"]["pid"]).environ()
        )
        log = local_backend.logs(local_backend.list_managed()[0], tail=500)
        for place in (runtime_env, log, everything_stored(worker)):
            assert "ghtok-4c3b2a190817" not in place
        stop_with_tasks(workspace, monkeypatch)

        checkout = local_backend.workspaces_dir / str(workspace.id) / "remote"
        files = sorted(p.name for p in checkout.iterdir())
        remote.commit({"requirements.txt": "alpha\n", "new.py": "X = 2\n"})
        workspace.project.git_secret_sealed = seal("deploy:wrong-7d6e5f4a")
        workspace.project.save()
        failed = start_with_tasks(workspace, monkeypatch)
    assert failed.status == states.FAILED, event_reasons(failed)
    assert failed.error_code == "dependency_setup_failed"
    assert failed.error_detail.startswith(
        "setup failed: the repository refused the credentials"
    )
    assert git("rev-parse", "HEAD", cwd=checkout) == head
    assert sorted(p.name for p in checkout.iterdir()) == files
    assert "wrong-7d6e5f4a" not in everything_stored(failed)
    client.force_login(workspace.owner)
    html = client.get(reverse("workspaces:detail", args=[workspace.id])).text
    assert "Dependency setup failed" in html
    assert "the repository refused the credentials" in html
    assert "wrong-7d6e5f4a" not in html and "ghtok-4c3b2a190817" not in html


def test_the_project_token_is_not_given_to_a_repository_on_another_host(
    local_backend, remote, index, tmp_path, default_class, monkeypatch, client
):
    """A member points a workspace at a server of their own (here the
    loopback server, while the project's token is bound to another host,
    a name that is only compared, never dialled): the token never leaves the
    control plane for it, git asks without it, and the start fails saying
    which hosts the credentials are for."""
    user, password = GIT_SECRET.split(":")
    with GitHttpServer(tmp_path, username=user, password=password) as server:
        workspace = workspace_with_repository(
            server.url(remote.bare),
            index.url,
            git_secret=GIT_SECRET,
            mirror_secret=MIRROR_SECRET,
            git_hosts="git.example.invalid",
        )
        failed = start_with_tasks(workspace, monkeypatch)
    assert failed.status == states.FAILED, event_reasons(failed)
    assert failed.error_code == "dependency_setup_failed"
    message = (
        "this project's git credentials are only for git.example.invalid; "
        f"{server.host} is not one of them."
    )
    assert failed.error_detail.startswith(f"setup failed: {message}")
    assert server.authorizations  # git asked, and was turned away
    assert not any(a for a in server.authorizations)  # never with the token
    setup = failed.launch_spec["setup"]
    assert setup["git_secret_sealed"] == ""  # withheld by the control plane
    assert setup["git_secret_hosts"] == ["git.example.invalid"]
    client.force_login(workspace.owner)
    html = client.get(reverse("workspaces:detail", args=[workspace.id])).text
    assert message.replace("'", "&#x27;") in html
    assert "ghtok-4c3b2a190817" not in html + everything_stored(failed)


def test_a_setup_step_past_the_setup_timeout_fails_the_start_plainly(
    local_backend, remote, index, default_class, monkeypatch, settings
):
    settings.NOTEBOOK_RUNTIME_SETUP_TIMEOUT_SECONDS = 6
    index.delay = 60  # the index takes a minute to answer
    worker = start_with_tasks(_workspace(remote, index), monkeypatch)
    assert worker.status == states.FAILED, event_reasons(worker)
    assert worker.error_code == "dependency_setup_failed"
    assert index.requests  # it was waiting for the index
    assert worker.error_detail.startswith(
        "setup failed: the setup step reached its timeout of 6 s "
        "(NOTEBOOK_RUNTIME_SETUP_TIMEOUT_SECONDS) while uv ran; uv was stopped."
    )
