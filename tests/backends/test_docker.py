"""The docker backend against a real engine (scripts/start-dockerd.sh)."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import replace

import pytest

from tests.backends.conftest import GIB, Harness, wait_for_phase
from workers.backends import naming
from workers.backends.base import BackendError, ErrorCode, Mount, Phase

pytestmark = pytest.mark.needs_docker


@pytest.fixture(scope="module")
def engine(docker_harness: Harness):
    import docker

    from tests.conftest import docker_url

    return docker.DockerClient(base_url=docker_url())


@pytest.fixture(scope="module")
def running(docker_harness: Harness, engine):
    """One container shared by the inspection tests."""
    project = f"p{uuid.uuid4().hex[:8]}"
    mount = Mount("nbf-test-data", "/data", read_only=True, project_id=project)
    spec = docker_harness.spec(project_id=project, mounts=(mount,))
    spec = replace(spec, resources=replace(spec.resources, temp_storage_bytes=GIB // 4))
    backend = docker_harness.backend
    ref = backend.launch(spec)
    observation = wait_for_phase(backend, ref, {Phase.RUNNING, Phase.FAILED})
    assert observation.phase == Phase.RUNNING, backend.logs(ref)
    yield spec, engine.containers.get(ref.name)
    backend.terminate(ref)
    engine.volumes.get(naming.project_volume_name(project, "nbf-test-data")).remove()


def test_it_applies_cpu_memory_and_tmp_limits(running):
    spec, container = running
    host = container.attrs["HostConfig"]
    assert host["NanoCpus"] == 1_000_000_000
    assert host["Memory"] == 4 * GIB
    assert host["MemoryReservation"] == GIB // 2
    assert host["MemorySwap"] == 4 * GIB
    assert host["Tmpfs"] == {"/tmp": f"size={GIB // 4},mode=1777"}


def test_it_locks_the_container_down(running):
    spec, container = running
    host = container.attrs["HostConfig"]
    assert host["Privileged"] is False
    assert host["CapDrop"] == ["ALL"]
    assert not host["CapAdd"]
    assert "no-new-privileges:true" in host["SecurityOpt"]
    assert container.attrs["Config"]["User"] == "1000:100"
    assert host["PidMode"] == "" and host["IpcMode"] in ("private", "shareable")


def test_it_mounts_named_volumes_and_only_operator_binds(running):
    spec, container = running
    mounts = {m["Destination"]: m for m in container.attrs["Mounts"]}
    assert mounts["/data"]["Type"] == "volume" and mounts["/data"]["RW"] is False
    assert mounts["/data"]["Name"] == naming.project_volume_name(
        spec.project_id, "nbf-test-data"
    )
    assert mounts["/home/jovyan"]["Name"] == naming.workspace_volume_name(
        spec.workspace_id
    )
    binds = {m["Destination"] for m in container.attrs["Mounts"] if m["Type"] == "bind"}
    assert "/usr" in binds and "/data" not in binds  # the test's operator binds


def test_it_labels_and_culls(running):
    spec, container = running
    labels = container.attrs["Config"]["Labels"]
    assert labels[naming.MANAGED_BY_KEY] == naming.MANAGED_BY_VALUE
    assert labels[naming.WORKER_ID_KEY] == spec.worker_id
    assert "--MappingKernelManager.cull_idle_timeout=600" in container.attrs["Args"]


def test_a_root_shell_is_uid_0_without_privileges(docker_harness: Harness, engine):
    spec = docker_harness.spec(root_shell=True)
    ref = docker_harness.backend.launch(spec)
    try:
        container = engine.containers.get(ref.name)
        assert container.attrs["Config"]["User"] == "0:0"
        assert container.attrs["HostConfig"]["Privileged"] is False
        assert container.attrs["HostConfig"]["CapDrop"] == ["ALL"]
        observation = wait_for_phase(
            docker_harness.backend, ref, {Phase.RUNNING, Phase.FAILED}
        )
        assert observation.phase == Phase.RUNNING
        status = container.exec_run(["/usr/bin/grep", "CapEff", "/proc/1/status"])
        assert status.output.split()[-1] == b"0000000000000000"
    finally:
        docker_harness.backend.terminate(ref)


def test_it_reports_a_gpu_the_engine_cannot_give(docker_harness: Harness, engine):
    spec = docker_harness.spec()
    spec = replace(spec, resources=replace(spec.resources, gpu_count=1))
    with pytest.raises(BackendError) as raised:
        docker_harness.backend.launch(spec)
    assert raised.value.code == ErrorCode.DEVICE_CLASS_UNAVAILABLE
    assert not engine.containers.list(
        all=True, filters={"name": naming.runtime_name(spec.worker_id)}
    )


def test_it_reports_an_image_it_cannot_pull(docker_harness: Harness):
    spec = docker_harness.spec(image="notebook-fleet-test/missing:1")
    with pytest.raises(BackendError) as raised:
        docker_harness.backend.launch(spec)
    assert raised.value.code == ErrorCode.IMAGE_PULL_FAILED


def test_it_refuses_a_foreign_container_with_its_name(docker_harness: Harness, engine):
    spec = docker_harness.spec()
    foreign = engine.containers.create(
        spec.image, ["/usr/bin/true"], name=naming.runtime_name(spec.worker_id)
    )
    try:
        with pytest.raises(BackendError) as raised:
            docker_harness.backend.launch(spec)
        assert raised.value.code == ErrorCode.CONFLICT
    finally:
        foreign.remove(force=True)


def test_it_lists_managed_containers_in_one_call(docker_harness: Harness):
    requests = []
    backend = docker_harness.rebuild()
    session = backend._connected().api
    original = session.get

    def counting_get(url, *args, **kwargs):
        requests.append(url)
        return original(url, *args, **kwargs)

    session.get = counting_get
    backend.list_managed()
    assert len(requests) == 1 and "/containers/json" in requests[0]


def test_two_projects_volumes_of_one_name_are_two_docker_volumes(
    docker_harness: Harness, engine
):
    """Each project's ``datasets`` is its own Docker volume: a file written
    in one is absent from the other, and a read-only mount stays read-only."""
    projects = [f"p{uuid.uuid4().hex[:8]}" for _ in range(2)]
    names = [naming.project_volume_name(p, "datasets") for p in projects]
    backend, refs = docker_harness.backend, []
    try:
        for project, read_only in zip(projects, (False, True), strict=True):
            mount = Mount("datasets", "/data", read_only=read_only, project_id=project)
            ref = backend.launch(
                docker_harness.spec(project_id=project, mounts=(mount,))
            )
            refs.append(ref)
            observation = wait_for_phase(backend, ref, {Phase.RUNNING, Phase.FAILED})
            assert observation.phase == Phase.RUNNING, backend.logs(ref)
        first, second = (engine.containers.get(r.name) for r in refs)
        assert [_data_volume(c) for c in (first, second)] == names
        labels = engine.volumes.get(names[0]).attrs["Labels"]
        assert labels[naming.PROJECT_ID_KEY] == projects[0]
        assert labels[naming.VOLUME_KEY] == "datasets"
        written = first.exec_run(["/usr/bin/touch", "/data/only-in-a"], user="0")
        assert written.exit_code == 0, written.output
        assert first.exec_run(["/usr/bin/test", "-e", "/data/only-in-a"]).exit_code == 0
        assert (
            second.exec_run(["/usr/bin/test", "-e", "/data/only-in-a"]).exit_code == 1
        )
        refused = second.exec_run(["/usr/bin/touch", "/data/x"], user="0")
        assert refused.exit_code != 0 and b"Read-only" in refused.output
    finally:
        for ref in refs:
            backend.terminate(ref)
        for name in names:
            with contextlib.suppress(Exception):
                engine.volumes.get(name).remove()


def test_a_volume_claimed_by_another_project_is_never_mounted(
    docker_harness: Harness, engine
):
    mine, theirs = (f"p{uuid.uuid4().hex[:8]}" for _ in range(2))
    name = naming.project_volume_name(mine, "datasets")
    engine.volumes.create(name=name, labels={naming.PROJECT_ID_KEY: theirs})
    spec = docker_harness.spec(
        project_id=mine, mounts=(Mount("datasets", "/data", project_id=mine),)
    )
    try:
        with pytest.raises(BackendError) as raised:
            docker_harness.backend.launch(spec)
        assert raised.value.code == ErrorCode.CONFLICT
        assert not engine.containers.list(
            all=True, filters={"name": naming.runtime_name(spec.worker_id)}
        )
    finally:
        engine.volumes.get(name).remove()


def _data_volume(container) -> str:
    (mount,) = [m for m in container.attrs["Mounts"] if m["Destination"] == "/data"]
    return mount["Name"]
