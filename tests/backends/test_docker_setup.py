"""The docker backend's setup step against a real engine: a setup container
clones a real git repository and installs from a real package index on
loopback into the workspace volume, with the dependency cache volume, then
the IDE container starts without the cache or any credential."""

from __future__ import annotations

import base64
import json
import os
import uuid
from dataclasses import replace

import pytest
from docker import errors as docker_errors

from tests.backends.conftest import Harness, wait_until
from tests.setup_support import PackageIndex, Remote, make_wheel
from workers.backends import naming, setup_step
from workers.backends.base import ErrorCode, Phase, SetupSpec
from workers.backends.docker_setup import setup_name

pytestmark = pytest.mark.needs_docker

GIT_SECRET = "deploy:ghtok-d0c4e7a1b2c3"  # noqa: S105 - a test credential
INDEX_SECRET = "bot:mirror-pw-9a8b7c6d"  # noqa: S105


def unseal(sealed: str) -> str:
    """The tests' stand-in for ``secret_box.unseal`` (no Django here)."""
    return sealed.removeprefix("sealed:")


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    wheels = tmp_path_factory.mktemp("wheels")
    make_wheel(wheels, "alpha")
    make_wheel(wheels, "beta")
    with PackageIndex(wheels) as index:
        yield index


@pytest.fixture(scope="module")
def remote(tmp_path_factory):
    root = tmp_path_factory.mktemp("remote")
    remote = Remote(root)
    remote.commit({"requirements.txt": "alpha\nbeta==1.0\n", "notes.md": "v1\n"})
    # The setup container runs as UID 1000; git refuses repositories that
    # belong to another user ("dubious ownership").
    for path in [remote.bare, *remote.bare.rglob("*")]:
        os.chown(path, 1000, 100, follow_symlinks=False)
    return remote


@pytest.fixture(scope="module")
def backend(docker_harness: Harness, remote):
    from tests.backends.docker_image import EXTRA_BINDS, LAUNCHER
    from tests.conftest import docker_url
    from workers.backends.docker import DockerBackend

    backend = DockerBackend(
        docker_url(),
        network="host",
        launcher=LAUNCHER,
        # Operator binds: the host's Python (as the harness) and, read-only,
        # the test's repository for its file:// URL.
        extra_binds=(*EXTRA_BINDS, f"{remote.bare}:{remote.bare}:ro"),
        grace_seconds=3,
        setup_python=LAUNCHER[0],
        dependency_cache_volume=f"nbf-test-cache-{uuid.uuid4().hex[:8]}",
        unseal=unseal,
    )
    yield backend
    for ref in backend.list_managed():
        backend.terminate(ref)


@pytest.fixture(scope="module")
def engine():
    import docker

    from tests.conftest import docker_url

    return docker.DockerClient(base_url=docker_url())


def setup_spec(docker_harness: Harness, remote, index, **changes):
    setup = SetupSpec(
        repository_url=remote.url,
        kernel_name="demo",
        fetch_policy="mirror",
        index_url=index.url,
        allow_local_repository=True,
        max_repository_bytes=50 * 1024 * 1024,
        timeout_seconds=120,
        git_secret_sealed=f"sealed:{GIT_SECRET}",
        index_secret_sealed=f"sealed:{INDEX_SECRET}",
    )
    workspace_id = changes.pop("workspace_id", f"ws{uuid.uuid4().hex[:8]}")
    return docker_harness.spec(
        workspace_id=workspace_id,
        base_url=f"/w/{workspace_id}/",
        setup=replace(setup, **changes),
    )


def run_until(backend, ref, phases, timeout=120.0):
    """Observe until a phase in ``phases``; the setup lines seen meanwhile
    (each observation carries them all so far) and the last observation."""
    seen: list[str] = []

    def done():
        observation = backend.observe(ref)
        lines = [e for e in observation.events if e.startswith("setup: ")]
        if len(lines) > len(seen):
            seen[:] = lines
        return observation if observation.phase in phases else None

    return seen, wait_until(done, f"phase in {phases}", timeout)


def secrets_in(text: str) -> bool:
    return any(s in text for s in ("ghtok-d0c4e7a1b2c3", "mirror-pw-9a8b7c6d"))


@pytest.fixture(scope="module")
def started(docker_harness, backend, engine, remote, index):
    """One workspace set up and started; its spec, ref, setup lines and the
    setup container as it was while the IDE container was only created."""
    spec = setup_spec(docker_harness, remote, index)
    ref = backend.launch(spec)
    ide = engine.containers.get(ref.name)
    setup = engine.containers.get(setup_name(ref.name))
    created_status = ide.status
    lines, observation = run_until(backend, ref, {Phase.RUNNING, Phase.FAILED})
    assert observation.phase == Phase.RUNNING, (observation, backend.logs(ref))
    return spec, ref, lines, created_status, setup


def test_it_sets_up_before_the_ide_starts(started, engine, remote):
    spec, ref, lines, created_status, _ = started
    assert created_status == "created"  # the IDE waited for the setup step
    assert lines[0].startswith("setup: cloning file://")
    assert "setup: installing 2 packages" in lines
    assert any(line.startswith("setup: checked out ") for line in lines)
    ide = engine.containers.get(ref.name)
    check = ide.exec_run(
        ["/home/jovyan/.venv/bin/python", "-c", "import alpha, beta; print('ok')"],
        user="1000:100",
    )
    assert check.output.decode().strip() == "ok", check.output
    kernel = ide.exec_run(
        ["cat", "/home/jovyan/.local/share/jupyter/kernels/demo/kernel.json"]
    )
    assert json.loads(kernel.output)["argv"][0] == "/home/jovyan/.venv/bin/python"
    notes = ide.exec_run(["cat", "/home/jovyan/remote/notes.md"])
    assert notes.output == b"v1\n"


def test_the_cache_volume_and_credentials_reach_the_setup_step_only(
    started, engine, backend, index
):
    spec, ref, *_ = started
    ide = engine.containers.get(ref.name)
    setup = engine.containers.get(setup_name(ref.name))
    ide_mounts = {m["Destination"]: m for m in ide.attrs["Mounts"]}
    setup_mounts = {m["Destination"]: m for m in setup.attrs["Mounts"]}
    cache = setup_mounts[setup_step.CONTAINER_CACHE]
    assert cache["Name"] == backend.setup.cache_volume and cache["RW"] is True
    assert setup_step.CONTAINER_CACHE not in ide_mounts
    assert setup_mounts["/home/jovyan"]["Name"] == ide_mounts["/home/jovyan"]["Name"]
    # The mirror got the project's credentials...
    basic = "Basic " + base64.b64encode(INDEX_SECRET.encode()).decode()
    assert basic in index.authorizations
    # ...which are in no container's configuration, environment or output.
    for container in (ide, setup):
        assert not secrets_in(json.dumps(container.attrs))
        assert not secrets_in(container.logs().decode())
    environ = ide.exec_run(["cat", "/proc/1/environ"]).output.decode()
    assert "NOTEBOOK_FLEET_SETUP" not in environ and not secrets_in(environ)
    assert "NOTEBOOK_FLEET_TOKEN" not in json.dumps(setup.attrs["Config"]["Env"])
    # The script deleted its credential files once read.
    with pytest.raises(docker_errors.NotFound):
        setup.get_archive(f"{setup_step.CONTAINER_DIR}/git-secret")


def test_setup_containers_are_not_listed_as_runtimes(started, backend, engine):
    spec, ref, *_ = started
    setups = engine.containers.list(
        all=True, filters={"label": f"{naming.WORKER_ID_KEY}={spec.worker_id}"}
    )
    assert sorted(c.name for c in setups) == sorted([ref.name, setup_name(ref.name)])
    listed = [item.ref.name for item in backend.list_runtimes()]
    assert ref.name in listed and setup_name(ref.name) not in listed


def test_a_second_start_is_a_hash_hit_without_the_index(
    started, docker_harness, backend, remote, index
):
    spec, ref, *_ = started
    backend.terminate(ref)
    index.requests.clear()
    again = replace(spec, worker_id=f"t{uuid.uuid4().hex[:12]}")
    ref = backend.launch(again)
    try:
        lines, observation = run_until(backend, ref, {Phase.RUNNING, Phase.FAILED})
        assert observation.phase == Phase.RUNNING, observation
        assert "setup: cache hit: dependencies unchanged, nothing to install" in lines
        assert index.requests == []
    finally:
        backend.terminate(ref)


def test_a_new_workspace_installs_from_the_cache_volume(
    started, docker_harness, backend, remote, index
):
    index.requests.clear()
    spec = setup_spec(docker_harness, remote, index)
    ref = backend.launch(spec)
    try:
        lines, observation = run_until(backend, ref, {Phase.RUNNING, Phase.FAILED})
        assert observation.phase == Phase.RUNNING, observation
        assert "setup: installing 2 packages" in lines
        assert not [r for r in index.requests if r.startswith("/files/")]
    finally:
        backend.terminate(ref)


def test_a_failed_setup_fails_the_start_and_never_starts_the_ide(
    docker_harness, backend, engine, remote, index
):
    remote_missing = setup_spec(
        docker_harness, remote, index, requirements_path="missing.txt"
    )
    ref = backend.launch(remote_missing)
    try:
        _, observation = run_until(backend, ref, {Phase.RUNNING, Phase.FAILED})
        assert observation.phase == Phase.FAILED
        assert observation.error_code == ErrorCode.DEPENDENCY_SETUP_FAILED
        assert observation.message.startswith("setup failed: the requirements file")
        assert "missing.txt" in observation.message
        assert engine.containers.get(ref.name).status == "created"
        assert "setup failed" in backend.logs(ref)
    finally:
        backend.terminate(ref)
    for name in (ref.name, setup_name(ref.name)):
        assert not engine.containers.list(all=True, filters={"name": f"^/{name}$"})
