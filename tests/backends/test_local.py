"""The local backend: real JupyterLab processes, inspected through /proc."""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import replace

import httpx
import psutil
import pytest

from tests.backends.conftest import GIB, TOKEN, make_spec, wait_for_phase
from workers.backends.base import BackendError, ErrorCode, Phase
from workers.backends.local import LocalBackend


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    backend = LocalBackend(
        tmp_path_factory.mktemp("local") / "workspaces", grace_seconds=3
    )
    yield backend
    for ref in backend.list_managed():
        backend.terminate(ref)


@pytest.fixture(scope="module")
def running(backend):
    """One runtime shared by the read-only tests below."""
    spec = make_spec(
        resources=replace(make_spec().resources, memory_limit_bytes=3 * GIB)
    )
    ref = backend.launch(spec)
    observation = wait_for_phase(backend, ref, {Phase.RUNNING, Phase.FAILED})
    assert observation.phase == Phase.RUNNING, backend.logs(ref)
    yield spec, ref, observation
    backend.terminate(ref)


def test_it_caps_memory_with_rlimit_as(running):
    spec, ref, _ = running
    with open(f"/proc/{ref.extra['pid']}/limits") as limits_file:
        limits = limits_file.read()
    line = next(x for x in limits.splitlines() if x.startswith("Max address space"))
    assert line.split()[3:5] == [str(3 * GIB), str(3 * GIB)]


def test_it_passes_kernel_culling_and_base_url(running):
    spec, ref, _ = running
    cmdline = psutil.Process(ref.extra["pid"]).cmdline()
    assert "--MappingKernelManager.cull_idle_timeout=600" in cmdline
    assert "--MappingKernelManager.cull_interval=60" in cmdline
    assert "--MappingKernelManager.cull_connected=True" in cmdline
    assert f"--ServerApp.base_url={spec.base_url}" in cmdline
    assert not any(TOKEN in part for part in cmdline)  # token only in the env


def test_it_keeps_the_control_plane_environment_out(running, monkeypatch):
    _, ref, _ = running
    environ = psutil.Process(ref.extra["pid"]).environ()
    assert environ["NOTEBOOK_FLEET_WORKER_ID"] == ref.worker_id
    assert "DJANGO_SETTINGS_MODULE" not in environ
    assert not {k for k in environ if k.startswith(("DATABASE", "REDIS", "SECRET"))}


def test_it_finds_its_runtimes_after_a_control_plane_restart(backend, running):
    _, ref, _ = running
    restarted = LocalBackend(backend.workspaces_dir, state_dir=backend.state_dir)
    assert ref.worker_id in {r.worker_id for r in restarted.list_managed()}
    assert restarted.observe(ref).phase == Phase.RUNNING


def test_it_refuses_a_second_worker_on_a_busy_workspace(backend, running):
    spec, _, _ = running
    other = replace(spec, worker_id="other-worker")
    with pytest.raises(BackendError) as raised:
        backend.launch(other)
    assert raised.value.code == ErrorCode.CONFLICT
    assert spec.worker_id in raised.value.message


def test_it_never_mistakes_a_recycled_pid(backend):
    """A record whose pid now belongs to another process (here: this test
    process) is a dead runtime, and terminate must not signal that pid."""
    spec = make_spec()
    backend.state_dir.mkdir(parents=True, exist_ok=True)
    record = {
        "worker_id": spec.worker_id,
        "workspace_id": spec.workspace_id,
        "pid": os.getpid(),
        "create_time": 1.0,
        "port": 1,
        "base_url": spec.base_url,
        "ide_kind": "jupyterlab",
        "labels": {},
        "log": "/nonexistent",
        "events": [],
    }
    path = backend.state_dir / f"nbf-{spec.worker_id}.json"
    path.write_text(json.dumps(record))
    ref = next(r for r in backend.list_managed() if r.worker_id == spec.worker_id)
    assert backend.observe(ref).phase == Phase.FAILED
    backend.terminate(ref)  # would kill pytest if it trusted the pid
    assert not path.exists()


def test_it_stops_the_whole_process_tree_and_keeps_the_workspace(backend):
    spec = make_spec()
    ref = backend.launch(spec)
    observation = wait_for_phase(backend, ref, {Phase.RUNNING, Phase.FAILED})
    headers = {"Authorization": f"token {TOKEN}"}
    kernel = httpx.post(
        f"{observation.endpoint}api/kernels", headers=headers, json={}, timeout=30
    )
    assert kernel.status_code == 201
    family = [
        psutil.Process(ref.extra["pid"]),
        *psutil.Process(ref.extra["pid"]).children(recursive=True),
    ]
    assert len(family) >= 2  # the server and its kernel
    (backend.workspaces_dir / spec.workspace_id / "notes.txt").write_text("keep me")

    backend.terminate(ref)

    assert not [p for p in family if p.is_running() and p.status() != "zombie"]
    assert (backend.workspaces_dir / spec.workspace_id / "notes.txt").exists()


def test_it_starts_one_process_for_concurrent_launches(backend):
    spec = make_spec()
    refs = []
    threads = [
        threading.Thread(target=lambda: refs.append(backend.launch(spec)))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert len({r.extra["pid"] for r in refs}) == 1
    finally:
        backend.terminate(refs[0])


def test_it_rejects_kinds_it_cannot_run(backend):
    with pytest.raises(BackendError) as raised:
        backend.launch(make_spec(ide_kind="custom", health_path="/healthz"))
    assert raised.value.code == ErrorCode.INVALID_SPEC


def test_it_reports_a_runtime_that_died_as_failed(backend):
    spec = make_spec()
    ref = backend.launch(spec)
    psutil.Process(ref.extra["pid"]).kill()
    deadline = time.monotonic() + 10
    while backend.observe(ref).phase != Phase.FAILED and time.monotonic() < deadline:
        time.sleep(0.1)
    assert backend.observe(ref).phase == Phase.FAILED
    relaunched = backend.launch(spec)  # a dead runtime is replaced, not adopted
    assert relaunched.extra["pid"] != ref.extra["pid"]
    backend.terminate(relaunched)
