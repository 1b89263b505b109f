"""reconcile_workers against real runtimes: a JupyterLab process or a
container that dies behind the control plane's back fails its worker as
vanished, with the exit code, in one pass, and its leftovers go."""

from __future__ import annotations

import os
import signal

import pytest

from tests.backends.conftest import make_spec, wait_until
from tests.factories import WorkerFactory
from workers import services, states
from workers.backends.base import Phase, RuntimeBackend, RuntimeRef
from workers.backends.local import LocalBackend
from workers.services import runtime

pytestmark = [pytest.mark.django_db, pytest.mark.needs_postgres]
START_TIMEOUT = 90.0


def ready_worker(backend: RuntimeBackend, **spec_overrides):
    """A ``ready`` worker whose runtime really runs."""
    worker = WorkerFactory(status=states.READY, backend=backend.name)
    ref = backend.launch(make_spec(worker_id=str(worker.id), **spec_overrides))
    wait_until(
        lambda: backend.observe(ref).phase == Phase.RUNNING,
        "the runtime to run",
        START_TIMEOUT,
    )
    worker.runtime_ref = ref.to_json()
    worker.save(update_fields=["runtime_ref"])
    return worker, ref


def exit_listed(backend: RuntimeBackend, ref: RuntimeRef):
    """The runtime's list entry once it shows how it ended."""

    def listed():
        for item in backend.list_runtimes():
            if item.ref.worker_id == ref.worker_id and item.exit_code is not None:
                return item
        return None

    return wait_until(listed, "the list to show the exit")


def assert_failed_as_vanished(worker, exit_text: str) -> None:
    worker.refresh_from_db()
    assert (worker.status, worker.error_code) == (states.FAILED, "runtime_vanished")
    assert exit_text in worker.error_detail, worker.error_detail
    assert worker.events.get(kind="transition").actor_label == "reconcile_workers"


@pytest.fixture
def local_backend(tmp_path):
    backend = LocalBackend(tmp_path / "workspaces", grace_seconds=3)
    runtime.override_backend("local", backend)
    yield backend
    runtime.override_backend("local", None)
    for ref in backend.list_managed():
        backend.terminate(ref)


def test_it_fails_a_worker_whose_jupyterlab_was_killed(local_backend, default_class):
    worker, ref = ready_worker(local_backend)
    record = local_backend.state_dir / f"{ref.name}.json"
    assert record.exists()
    os.kill(ref.extra["pid"], signal.SIGKILL)
    exit_listed(local_backend, ref)

    report = services.workers_reconcile(backends=["local"])

    assert report["local"]["failed"] == 1
    assert_failed_as_vanished(worker, "exit code 137 (SIGKILL)")
    assert worker.events.get(kind="transition").data["exit_code"] == 137
    assert not record.exists()  # leftovers removed: the state file...
    assert local_backend.list_runtimes() == []  # ...and the listing


@pytest.fixture
def docker_backend():
    import docker

    from tests.backends.docker_image import EXTRA_BINDS, LAUNCHER, ensure_image
    from tests.conftest import docker_url
    from workers.backends.docker import DockerBackend

    engine = docker.DockerClient(base_url=docker_url())
    image = ensure_image(engine)
    backend = DockerBackend(
        docker_url(),
        network="host",
        launcher=LAUNCHER,
        extra_binds=EXTRA_BINDS,
        grace_seconds=3,
    )
    runtime.override_backend("docker", backend)
    yield backend, engine, image
    runtime.override_backend("docker", None)
    for ref in backend.list_managed():
        backend.terminate(ref)


@pytest.mark.needs_docker
@pytest.mark.parametrize(
    ("sig", "exit_text"),
    [
        ("SIGKILL", "exit code 137 (SIGKILL)"),
        # JupyterLab shuts down cleanly on TERM: exit code 0, as the
        # containers of a crashed and restarted engine report. Still a
        # failure: the worker should have been running.
        ("SIGTERM", "exit code 0"),
    ],
)
def test_it_fails_a_worker_whose_container_was_stopped_behind_its_back(
    docker_backend, default_class, sig, exit_text
):
    backend, engine, image = docker_backend
    worker, ref = ready_worker(backend, image=image)
    engine.containers.get(ref.name).kill(sig)
    exit_listed(backend, ref)

    report = services.workers_reconcile(backends=["docker"])

    assert report["docker"]["failed"] == 1
    assert_failed_as_vanished(worker, exit_text)
    assert ref.worker_id not in {r.worker_id for r in backend.list_managed()}
