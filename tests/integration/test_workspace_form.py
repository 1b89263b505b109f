"""The launch form and ``workspace_create``: every rule and bad input of
issue 9, each answered at its field, with nothing created."""

from datetime import timedelta

import pytest
from django.http import QueryDict
from django.utils import timezone

from tests.factories import WorkerFactory, WorkspaceFactory
from tests.integration.workspace_support import IMAGE, launch_data
from workers import states
from workers.models import Worker
from workers.services import LaunchRefused
from workspaces.forms import WorkspaceLaunchForm, launch_data_from_json
from workspaces.models import Plan, Workspace, WorkspaceMount
from workspaces.policy import WorkspaceRefused
from workspaces.services import workspace_create

pytest_plugins = ["tests.integration.workspace_support"]
pytestmark = [pytest.mark.django_db, pytest.mark.needs_postgres]


def form_for(user, data: dict) -> WorkspaceLaunchForm:
    query = QueryDict(mutable=True)
    for key, value in data.items():
        query.setlist(key, value if isinstance(value, list) else [value])
    return WorkspaceLaunchForm(query, user=user)


def errors(world, user=None, **overrides) -> dict:
    form = form_for(
        user or world.personal.personal_owner, launch_data(world, **overrides)
    )
    assert not form.is_valid()
    assert not Workspace.objects.exists()
    return form.errors


def test_it_creates_and_starts_a_workspace_with_its_mounts(world, alice):
    form = form_for(
        alice,
        launch_data(world, mounts=[(world.data, "/data"), (world.scratch, "/scratch")]),
    )
    assert form.is_valid(), form.errors
    worker = form.save()
    assert worker.status == states.STARTING and worker.owner == alice
    workspace = worker.workspace
    assert workspace.name == "analysis" and workspace.project == world.personal
    assert sorted(workspace.mounts.values_list("mount_path", flat=True)) == [
        "/data",
        "/scratch",
    ]
    # Empty CPU / memory take the plan's limits.
    assert (workspace.cpu_limit, workspace.memory_limit) == ("4", "8Gi")
    assert worker.launch_spec["mounts"][0]["volume"] in {"data", "scratch"}


def test_it_defaults_to_the_personal_project_and_the_default_class(world, alice):
    form = WorkspaceLaunchForm(user=alice)
    assert form.initial["project"] == world.personal.pk
    assert form.initial["resource_class"] == world.small
    assert form.initial["queue"] == "default"
    projects = set(form.fields["project"].queryset)
    assert projects == {world.personal, world.team}  # not bob's


def test_the_queue_choices_are_the_plan_queues_and_the_default(world, alice):
    queues = {q.name for q in WorkspaceLaunchForm(user=alice).fields["queue"].queryset}
    assert queues == {"default", "interactive"}
    team = WorkspaceLaunchForm({"project": str(world.team.pk)}, user=alice)
    assert {q.name for q in team.fields["queue"].queryset} == {"default"}


def test_a_closed_plan_window_offers_only_the_default_queue(world, alice):
    now = timezone.now()
    Plan.objects.filter(pk=world.plan.pk).update(
        window_kind="one_off",
        window_start=now + timedelta(days=1),
        window_end=now + timedelta(days=2),
    )
    form = WorkspaceLaunchForm(user=alice)
    assert [q.name for q in form.fields["queue"].queryset] == ["default"]
    assert "window is closed" in form.window_note
    assert "queue" in errors(world, queue="interactive")


def test_a_queue_of_another_plan_is_refused(world):
    assert "not offered" in errors(world, queue="other-plans")["queue"][0]


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("name", "Bad_Name", "lowercase"),
        ("name", "x" * 10_000, "at most 63"),
        ("name", "ana\x00lysis", "Null characters"),
        ("image", "evil/miner:latest", "not in this project's allowlist"),
        ("image", "jupyter/base\x00", "not in this project's allowlist"),
        ("gpu_sm_percentage", "0", "greater than or equal to 1"),
        ("gpu_sm_percentage", "101", "less than or equal to 100"),
        ("gpu_count", "-1", "greater than or equal to 0"),
        ("gpu_model", "H100", "not allowed"),
        ("ide_kind", "emacs", "valid choice"),
        ("resource_class", "nope", "valid choice"),
        ("cpu_limit", "lots", "not a Kubernetes quantity"),
        ("cpu_limit", "8", "above the limit of plan lab-plan (4)"),
        ("memory_limit", "64Gi", "above the limit of plan lab-plan (8Gi)"),
        ("root_shell", "on", "Root shell is not allowed"),
    ],
)
def test_bad_values_are_answered_at_their_field(world, field, value, message):
    found = errors(world, **{field: value})
    assert message in " ".join(found[field]), found


def test_a_gpu_count_above_the_class_maximum_is_refused(world):
    found = errors(world, gpu_count="1", gpu_model="RTX 5090")
    assert "offers no GPUs" in found["gpu_count"][0]
    found = errors(world, resource_class="gpu", gpu_count="3", gpu_model="RTX 5090")
    assert "at most 2 GPUs" in found["gpu_count"][0]


def test_a_gpu_workspace_needs_a_model(world):
    assert (
        "Pick a GPU model"
        in errors(world, resource_class="gpu", gpu_count="1")["gpu_model"][0]
    )


def test_root_shell_is_offered_when_the_project_allows_it(world, alice):
    world.personal.allow_root = True
    world.personal.save()
    form = form_for(alice, launch_data(world, root_shell="on"))
    assert form.is_valid(), form.errors
    assert form.save().workspace.root_shell


def test_a_group_project_needs_the_group_to_allow_root_too(world, alice):
    world.team.allow_root = True
    world.team.save()
    found = errors(world, project=str(world.team.pk), root_shell="on", mounts=[])
    assert "Root shell is not allowed" in found["root_shell"][0]


@pytest.mark.parametrize(
    "path, message",
    [
        ("/etc", "system path"),
        ("/", "must be absolute, not '/'"),
        ("../x", "must be absolute"),
        ("data", "must be absolute"),
        ("/data/../etc", "must not contain '..'"),
        ("/da\x00ta", "must be absolute"),
        ("", "Give volume data a mount path"),
    ],
)
def test_bad_mount_paths_are_refused(world, path, message):
    found = errors(world, mounts=[(world.data, path)])
    assert message in found["mounts"][0], found


def test_a_duplicate_mount_path_is_refused(world):
    found = errors(world, mounts=[(world.data, "/data"), (world.scratch, "/data/")])
    assert "used by two mounts" in found["mounts"][0]


def test_a_volume_of_another_project_is_refused(world):
    found = errors(world, mounts=[(world.bobs_volume, "/data")])
    assert "not one of this project's volumes" in found["mounts"][0]


def test_a_project_the_user_is_not_in_is_refused(world):
    found = errors(world, project=str(world.bobs.pk))
    assert found["project"] == ["Pick one of your projects."]
    assert "project" in errors(world, project="not-a-uuid")


def test_a_duplicate_name_in_the_project_is_refused(world, alice):
    WorkspaceFactory(project=world.personal, owner=alice, name="analysis")
    form = form_for(alice, launch_data(world))
    assert not form.is_valid()
    assert "already has a workspace named analysis" in form.errors["name"][0]
    assert Workspace.objects.count() == 1


def test_over_quota_says_which_limit_what_is_used_and_asked(world, alice):
    WorkerFactory(
        workspace=WorkspaceFactory(project=world.personal, owner=alice),
        status="ready",
        gpu_units=1,
        gpu_model="RTX 5090",
    )
    data = launch_data(world, resource_class="gpu", gpu_count="1", gpu_model="RTX 5090")
    form = form_for(alice, data)
    assert form.is_valid(), form.errors
    assert form.save() is None
    assert form.refusal.code == "project_gpu_quota"
    assert (
        "Project Alice personal has 1.0 of 1.5 GPUs in use and this workspace "
        "needs 1.0" in form.errors["gpu_count"][0]
    )
    assert not Workspace.objects.filter(name="analysis").exists()
    assert form["name"].value() == "analysis"  # what was typed is kept


def test_the_per_user_limit_is_a_form_error_and_creates_nothing(world, alice, settings):
    settings.NOTEBOOK_RUNTIME_MAX_WORKERS_PER_USER = 1
    WorkerFactory(workspace=WorkspaceFactory(project=world.personal, owner=alice))
    form = form_for(alice, launch_data(world))
    assert form.is_valid(), form.errors
    assert form.save() is None
    assert form.refusal.code == "max_workers_per_user"
    assert "1 of 1 workers running" in form.non_field_errors()[0]
    assert not Workspace.objects.filter(name="analysis").exists()
    assert not WorkspaceMount.objects.exists()


def test_the_service_enforces_the_rules_without_the_form(world, alice, bob):
    """The API or the console may call the service directly: same rules."""
    base = {
        "owner": alice,
        "actor": alice,
        "project": world.personal,
        "name": "direct",
        "ide_kind": "jupyterlab",
        "proxy_path": "",
        "image": IMAGE,
        "root_shell": False,
        "queue": world.interactive,
        "resource_class": world.small,
        "gpu_count": 0,
        "gpu_model": "",
        "gpu_sm_percentage": 100,
        "cpu_limit": "",
        "memory_limit": "",
        "mounts": [],
    }
    cases = {
        "not_a_member": {"owner": bob, "actor": bob},
        "image_allowlist": {"image": "evil/miner:1"},
        "root_shell": {"root_shell": True},
        "queue_not_in_plan": {"queue": world.other_queue},
        "gpu_count": {"gpu_count": 1, "gpu_model": "RTX 5090"},
        "mount_volume": {"mounts": [(world.bobs_volume, "/data")]},
        "mount_path": {"mounts": [(world.data, "/etc")]},
        "invalid": {"gpu_sm_percentage": 0},
    }
    for code, change in cases.items():
        with pytest.raises(LaunchRefused) as caught:
            workspace_create(**{**base, **change})
        assert caught.value.code == code, (code, caught.value.message)
    with pytest.raises(WorkspaceRefused) as caught:
        workspace_create(**{**base, "name": "x" * 10_000})
    assert caught.value.field == "name"
    assert not Workspace.objects.exists() and not Worker.objects.exists()


def test_json_payloads_feed_the_same_form(world, alice):
    payload = {
        "project": str(world.personal.pk),
        "name": "from-api",
        "ide_kind": "jupyterlab",
        "image": IMAGE,
        "queue": "interactive",
        "resource_class": "small",
        "gpu_count": 0,
        "gpu_sm_percentage": 100,
        "root_shell": False,
        "mounts": [{"volume": world.data.pk, "path": "/data"}],
    }
    assert launch_data_from_json(payload).getlist("mount_path") == ["/data"]
    form = WorkspaceLaunchForm(payload, user=alice)
    assert form.is_valid(), form.errors
    worker = form.save()
    assert worker.workspace.queue == world.interactive
    assert worker.workspace.mounts.get().volume == world.data
    bad = WorkspaceLaunchForm({**payload, "mounts": "nope"}, user=alice)
    assert not bad.is_valid() and "mounts" in bad.errors
