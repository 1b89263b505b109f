"""The launch service: every limit named when hit, nothing over-allocated."""

from decimal import Decimal

import pytest

from tests.factories import ProjectFactory, UserFactory, WorkerFactory, WorkspaceFactory
from tests.integration.lifecycle_support import (
    committed,
    gpu_plan,
    gpu_workspace,
    queue,
)
from workers import states
from workers.models import Worker
from workers.services import LaunchRefused
from workspaces.models import Group, Plan
from workspaces.services import workspace_start

pytest_plugins = ["tests.integration.lifecycle_support"]
pytestmark = [pytest.mark.django_db, pytest.mark.needs_postgres]


def refused(workspace) -> LaunchRefused:
    with pytest.raises(LaunchRefused) as caught:
        workspace_start(workspace=workspace, actor=workspace.owner)
    return caught.value


def test_it_creates_a_starting_worker_with_a_snapshot_and_enqueues_on_commit(
    fleet, default_class
):
    workspace = WorkspaceFactory()
    with committed():
        worker = workspace_start(workspace=workspace, actor=workspace.owner)
        assert fleet.tasks.sent == []
    assert fleet.tasks.sent == [("start_worker", str(worker.id))]
    assert worker.status == states.STARTING
    assert worker.resource_snapshot["id"] == "small"
    assert worker.project_id == workspace.project_id and worker.queue_name == "default"
    assert worker.next_action == states.NEXT_START_TIMEOUT


def test_it_refuses_beyond_the_per_user_worker_limit(fleet, default_class, settings):
    settings.NOTEBOOK_RUNTIME_MAX_WORKERS_PER_USER = 2
    owner = UserFactory()
    project = ProjectFactory(personal_owner=owner)
    for _ in range(2):
        workspace_start(workspace=WorkspaceFactory(project=project), actor=owner)
    error = refused(WorkspaceFactory(project=project))
    assert error.limit == "max_workers_per_user"
    assert "2 of 2 workers" in error.message


def test_it_does_not_count_stopping_workers_against_the_limit(
    fleet, default_class, settings
):
    settings.NOTEBOOK_RUNTIME_MAX_WORKERS_PER_USER = 1
    workspace = WorkspaceFactory()
    WorkerFactory(
        workspace=workspace, status=states.STOPPING, error_code="stop_internal"
    )
    assert workspace_start(
        workspace=WorkspaceFactory(project=workspace.project), actor=workspace.owner
    )


def test_it_names_the_project_gpu_quota_when_full(fleet, default_class):
    owner = UserFactory()
    project = ProjectFactory(
        name="ml-team", personal_owner=owner, plan=gpu_plan(), gpu_quota=Decimal(2)
    )
    workspace_start(workspace=gpu_workspace(project=project, units=2), actor=owner)
    error = refused(gpu_workspace(project=project, units=1))
    assert error.limit == "project_gpu_quota"
    assert error.message.startswith("Project ml-team has 2.0 of 2.0 GPUs in use")
    assert (
        "stop a workspace or ask a project manager to raise the quota" in error.message
    )


def test_it_counts_effective_gpu_units(fleet, default_class):
    owner = UserFactory()
    project = ProjectFactory(
        personal_owner=owner, plan=gpu_plan(), gpu_quota=Decimal(1)
    )
    workspace_start(
        workspace=gpu_workspace(project=project, units=1, sm=50), actor=owner
    )
    workspace_start(
        workspace=gpu_workspace(project=project, units=1, sm=50), actor=owner
    )
    error = refused(gpu_workspace(project=project, units=1, sm=25))
    assert "has 1.0 of 1.0 GPUs in use and this workspace needs 0.25" in error.message


def test_it_enforces_the_queue_deserved_gpu_limit(fleet, default_class):
    capped = queue("capped", priority=5, deserved=Decimal(1))
    first = gpu_workspace(queue=capped)
    first.project.plan.queues.add(capped)
    workspace_start(workspace=first, actor=first.owner)
    second = gpu_workspace(queue=capped)
    second.project.plan.queues.add(capped)
    error = refused(second)
    assert error.limit == "queue_deserved_gpu_limit"
    assert "Queue capped has 1.0 of its deserved 1.0 GPUs" in error.message


def test_it_allows_only_images_from_the_project_allowlist(fleet, default_class):
    error = refused(WorkspaceFactory(image="evil/miner:1"))
    assert error.limit == "image_allowlist"
    assert not Worker.objects.exists()


def test_it_allows_only_gpu_models_of_the_plan(fleet, default_class):
    workspace = gpu_workspace()
    workspace.gpu_model = "H100"
    workspace.save()
    assert refused(workspace).limit == "gpu_model"


def test_it_needs_project_allow_root_for_a_personal_root_shell(fleet, default_class):
    workspace = WorkspaceFactory(root_shell=True)
    assert refused(workspace).limit == "root_shell"
    workspace.project.allow_root = True
    workspace.project.save()
    assert workspace_start(workspace=workspace, actor=workspace.owner)


def test_it_needs_project_and_group_allow_root_in_a_group_project(fleet, default_class):
    owner = UserFactory()
    group = Group.objects.create(name="Team", slug="team", allow_root=False)
    project = ProjectFactory(personal_owner=None, group=group, allow_root=True)
    workspace = WorkspaceFactory(project=project, owner=owner, root_shell=True)
    error = refused(workspace)
    assert error.limit == "root_shell" and "its group" in error.message
    group.allow_root = True
    group.save()
    assert workspace_start(workspace=workspace, actor=owner)


def test_it_runs_plan_bound_queues_only_while_the_window_is_open(fleet, default_class):
    import time_machine

    bound = queue("nightly", priority=10)
    plan = gpu_plan(
        queues=[bound],
        window_kind=Plan.WindowKind.WEEKLY,
        window_rules=[
            {"days": [0, 1, 2, 3, 4, 5, 6], "start": "08:00", "end": "20:00"}
        ],
    )
    owner = UserFactory()
    project = ProjectFactory(personal_owner=owner, plan=plan)
    with time_machine.travel("2026-11-23 21:00Z"):
        assert (
            refused(WorkspaceFactory(project=project, queue=bound)).limit
            == "plan_window"
        )
        assert workspace_start(workspace=WorkspaceFactory(project=project), actor=owner)
    with time_machine.travel("2026-11-24 09:00Z"):
        worker = workspace_start(
            workspace=WorkspaceFactory(project=project, queue=bound), actor=owner
        )
    assert worker.plan_bound and worker.queue_priority == 10


def test_it_refuses_a_queue_not_bound_to_the_plan(fleet, default_class):
    workspace = WorkspaceFactory(queue=queue("other", priority=3))
    assert refused(workspace).limit == "queue_not_in_plan"


def test_it_refuses_a_second_worker_for_one_workspace(fleet, default_class):
    workspace = WorkspaceFactory()
    workspace_start(workspace=workspace, actor=workspace.owner)
    refusal = refused(workspace)
    assert refusal.limit == "workspace_active"
    assert refusal.message == (
        f"Workspace {workspace.name} is already running; stop it first."
    )


def test_it_says_a_stopping_workspace_is_stopping_not_running(fleet, default_class):
    workspace = WorkspaceFactory()
    WorkerFactory(workspace=workspace, status=states.STOPPING)
    refusal = refused(workspace)
    assert refusal.limit == "workspace_active"
    assert refusal.message == (
        f"Workspace {workspace.name} is stopping; wait, or retry the stop."
    )


def test_it_preempts_lower_priority_preemptible_workers(fleet, default_class, settings):
    settings.NOTEBOOK_RUNTIME_GPU_CAPACITY = {"RTX 5090": 2}
    low = queue("spot", priority=1, preemptible=True)
    steady = queue("steady", priority=1, preemptible=False)
    high = queue("urgent", priority=50)
    victim = gpu_workspace(queue=low)
    keeper = gpu_workspace(queue=steady)
    boss = gpu_workspace(queue=high)
    for ws in (victim, keeper, boss):
        ws.project.plan.queues.add(low, steady, high)
    with committed():
        v = workspace_start(workspace=victim, actor=victim.owner)
        k = workspace_start(workspace=keeper, actor=keeper.owner)
        b = workspace_start(workspace=boss, actor=boss.owner)
    v.refresh_from_db(), k.refresh_from_db()
    assert (v.status, k.status) == (states.STOPPING, states.STARTING)
    assert v.events.filter(reason="Preempted by higher-priority workload").exists()
    assert ("stop_worker", str(v.id)) in fleet.tasks.sent
    assert b.status == states.STARTING


def test_it_never_preempts_non_preemptible_or_equal_priority(
    fleet, default_class, settings
):
    settings.NOTEBOOK_RUNTIME_GPU_CAPACITY = {"RTX 5090": 1}
    steady = queue("steady", priority=1, preemptible=False)
    peer = queue("peer", priority=50, preemptible=True)
    high = queue("urgent", priority=50)
    first = gpu_workspace(queue=steady)
    first.project.plan.queues.add(steady)
    workspace_start(workspace=first, actor=first.owner)
    second = gpu_workspace(queue=peer)
    second.project.plan.queues.add(peer)
    error = refused(second)
    assert error.limit == "gpu_capacity"
    boss = gpu_workspace(queue=high)
    boss.project.plan.queues.add(high)
    assert refused(boss).limit == "gpu_capacity"
    assert not Worker.objects.filter(status=states.STOPPING).exists()


@pytest.mark.django_db(transaction=True)
def test_it_fails_the_worker_with_a_clear_error_when_the_task_queue_is_down(
    fleet, default_class
):
    fleet.tasks.broken = True
    workspace = WorkspaceFactory()
    with pytest.raises(LaunchRefused) as caught:
        workspace_start(workspace=workspace, actor=workspace.owner)
    assert caught.value.limit == "task_queue"
    worker = Worker.objects.get()
    assert worker.status == states.FAILED
    assert worker.error_code == "task_queue_unavailable"
    failure = worker.events.get(kind="transition")
    assert (failure.to_status, failure.actor_label) == ("failed", "enqueue")
    assert "Task queue unavailable" in failure.reason
