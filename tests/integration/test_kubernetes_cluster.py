"""The kubernetes backend with the engine and the workspace services: the
real client against FakeKubeAPI over HTTP, a real database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.backends.conftest import kube_backend, make_spec, wait_until
from tests.backends.fake_kube import FakeKubeAPI
from tests.factories import ProjectFactory, WorkerFactory, WorkspaceFactory
from workers import services, states
from workers.backends import naming, registry
from workers.models import Worker
from workers.services import LaunchRefused
from workspaces.models import Volume, WorkspaceMount
from workspaces.policy import check_launch_policy
from workspaces.services import workspace_launch_request

pytestmark = [pytest.mark.django_db, pytest.mark.needs_postgres]


@pytest.fixture
def api():
    api = FakeKubeAPI().start()
    yield api
    api.stop()


@pytest.fixture
def backend(api):
    backend = kube_backend(api)
    with registry.override("kubernetes", backend):
        yield backend


def leftover_worker(api, backend, *, status, ended_ago: timedelta) -> Worker:
    """A worker whose launch failed after its Secret and NetworkPolicy."""
    worker = WorkerFactory(backend="kubernetes", status=status)
    spec = make_spec(worker_id=str(worker.id))
    api.fail_next("POST", "pods", 500, "etcdserver: request timed out")
    with pytest.raises(Exception):  # noqa: B017, PT011 - the injected 500
        backend.launch(spec)
    ref = backend._ref(spec.worker_id, spec.port)
    Worker.objects.filter(id=worker.id).update(
        runtime_ref=ref.to_json(), stopped_at=timezone.now() - ended_ago
    )
    return worker


def test_reconcile_removes_leftover_kinds_only_after_the_grace_period(
    api, backend, default_class
):
    recent = leftover_worker(
        api, backend, status=states.FAILED, ended_ago=timedelta(seconds=10)
    )
    old = leftover_worker(
        api, backend, status=states.FAILED, ended_ago=timedelta(hours=1)
    )
    report = services.workers_reconcile(backends=["kubernetes"])
    assert report["kubernetes"]["orphans_terminated"] == 1
    assert api.names("secrets") == {naming.runtime_name(str(recent.id))}
    assert api.names("networkpolicies") == {naming.runtime_name(str(recent.id))}
    assert not api.get("secrets", naming.runtime_name(str(old.id)))


def test_a_ready_worker_with_only_leftovers_is_failed_as_vanished(
    api, backend, default_class
):
    worker = WorkerFactory(backend="kubernetes", status=states.READY)
    spec = make_spec(worker_id=str(worker.id))
    ref = backend.launch(spec)
    Worker.objects.filter(id=worker.id).update(runtime_ref=ref.to_json())
    del api.objects[("pods", "notebooks", ref.name)]  # evicted, gone
    services.workers_reconcile(backends=["kubernetes"])
    worker.refresh_from_db()
    assert worker.status == states.FAILED
    assert worker.error_code == "runtime_vanished"


@pytest.fixture
def watched(api):
    backend = kube_backend(api, watch=True)
    with registry.override("kubernetes", backend):
        yield backend
    backend.close()


def lists(api) -> int:
    """LIST requests so far (a GET of a collection; WATCH is counted apart)."""
    kinds = ("pods", "events", "services", "secrets", "networkpolicies")
    return sum(
        1
        for method, path in list(api.requests)
        if method == "GET" and path.endswith(("/resourceclaims", *kinds))
    )


def test_reconcile_passes_list_nothing_once_the_watches_are_warm(
    api, watched, default_class
):
    """Five passes: no LIST. An orphan appearing later (a half-finished
    launch's Secret and NetworkPolicy) is found through the watch, left
    inside the grace period and removed after it."""
    assert watched.watch.wait_synced(10)
    worker = WorkerFactory(backend="kubernetes", status=states.READY)
    ref = watched.launch(make_spec(worker_id=str(worker.id)))
    Worker.objects.filter(id=worker.id).update(runtime_ref=ref.to_json())
    before = lists(api)
    for _ in range(5):
        report = services.workers_reconcile(backends=["kubernetes"])
        assert report["kubernetes"]["listed"] == 1
    orphan = leftover_worker(
        api, watched, status=states.FAILED, ended_ago=timedelta(seconds=10)
    )
    wait_until(
        lambda: (
            services.workers_reconcile(backends=["kubernetes"])["kubernetes"]["listed"]
            == 2
        ),
        "the orphan through the watch",
        10,
    )
    assert api.get("secrets", naming.runtime_name(str(orphan.id)))  # in grace
    Worker.objects.filter(id=orphan.id).update(
        stopped_at=timezone.now() - timedelta(hours=1)
    )
    report = services.workers_reconcile(backends=["kubernetes"])
    assert report["kubernetes"]["orphans_terminated"] == 1
    assert not api.get("secrets", naming.runtime_name(str(orphan.id)))
    assert not api.get("networkpolicies", naming.runtime_name(str(orphan.id)))
    assert lists(api) == before
    worker.refresh_from_db()
    assert worker.status == states.READY


def project_volume(project, name="datasets", **fields):
    return Volume.objects.create(project=project, name=name, **fields)


def test_a_launch_spec_carries_the_project_volume_to_create(default_class):
    workspace = WorkspaceFactory()
    volume = project_volume(workspace.project, size="5Gi", storage_class="fast")
    WorkspaceMount.objects.create(
        workspace=workspace, volume=volume, mount_path="/data", read_only=True
    )
    request = workspace_launch_request(
        workspace=workspace, project=workspace.project, plan=None
    )
    (mount,) = request.spec.mounts
    assert request.spec.project_id == str(workspace.project_id)
    assert (mount.project_id, mount.read_only) == (str(workspace.project_id), True)
    assert (mount.size_bytes, mount.storage_class) == (5 * 1024**3, "fast")


def test_a_volume_of_another_project_is_refused_at_start(default_class):
    workspace = WorkspaceFactory()
    theirs = project_volume(ProjectFactory())
    WorkspaceMount.objects.create(workspace=workspace, volume=theirs, mount_path="/d")
    with pytest.raises(LaunchRefused) as raised:
        check_launch_policy(workspace=workspace, project=workspace.project, plan=None)
    assert "another project" in str(raised.value)


def test_the_sync_command_creates_a_priority_class_per_queue(api, backend):
    from django.core.management import call_command

    from workspaces.models import SchedulingQueue

    SchedulingQueue.objects.create(name="spot", priority=-5, preemptible=True)
    SchedulingQueue.objects.create(name="gold", priority=1000)
    call_command("kube_sync_priority_classes")
    spot = api.get("priorityclasses", "notebook-fleet-spot")
    gold = api.get("priorityclasses", "notebook-fleet-gold")
    assert (spot["value"], spot["preemptionPolicy"]) == (-5, "Never")
    assert (gold["value"], gold["preemptionPolicy"]) == (1000, "PreemptLowerPriority")


def test_a_stop_waits_out_the_pods_grace_period_without_failing(
    api, backend, default_class
):
    from workers.services.stopping import worker_stop_run

    worker = WorkerFactory(backend="kubernetes", status=states.STOPPING)
    ref = backend.launch(make_spec(worker_id=str(worker.id)))
    api.set_pod_status(ref.name, phase="Running", podIP="127.0.0.1")
    Worker.objects.filter(id=worker.id).update(runtime_ref=ref.to_json())
    api.grace_seconds = 600  # kubelet finishes below, not a timer
    outcome = worker_stop_run(worker_id=worker.id, actor_label="test")
    worker.refresh_from_db()
    assert (worker.status, worker.error_code) == (states.STOPPING, "")
    assert not outcome.done and outcome.retry_in > 0
    api.finish_terminations()
    assert worker_stop_run(worker_id=worker.id, actor_label="test").done
    worker.refresh_from_db()
    assert worker.status == states.STOPPED
