import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from tests.factories import ProjectFactory, WorkspaceFactory
from workspaces.models import (
    Group,
    Project,
    SchedulingQueue,
    Volume,
    Workspace,
    WorkspaceMount,
)

pytestmark = pytest.mark.django_db


def test_a_default_queue_always_exists():
    assert SchedulingQueue.objects.get(is_default=True).name == "default"
    with pytest.raises(IntegrityError), transaction.atomic():
        SchedulingQueue.objects.create(name="other", is_default=True)


def test_a_project_is_personal_or_a_groups_never_both(alice):
    group = Group.objects.create(name="ML", slug="ml")
    with pytest.raises(IntegrityError), transaction.atomic():
        Project.objects.create(name="x", slug="x", personal_owner=alice, group=group)
    with pytest.raises(IntegrityError), transaction.atomic():
        Project.objects.create(name="y", slug="y")


def test_workspace_names_are_unique_within_a_project(default_class):
    ws = WorkspaceFactory(name="same")
    with pytest.raises(IntegrityError), transaction.atomic():
        WorkspaceFactory(project=ws.project, owner=ws.owner, name="same")
    WorkspaceFactory(name="same")  # another project may reuse it


@pytest.mark.parametrize(
    "name", ["Has-Caps", "under_score", "-lead", "trail-", "x" * 64, "sp ace"]
)
def test_workspace_names_must_be_dns_safe(default_class, name):
    ws = WorkspaceFactory.build(project=ProjectFactory(), name=name)
    ws.owner = ws.project.personal_owner
    with pytest.raises(ValidationError) as exc:
        ws.full_clean()
    assert "name" in exc.value.message_dict


def test_group_projects_need_group_and_project_to_allow_root(alice):
    group = Group.objects.create(name="ML", slug="ml", allow_root=False)
    project = Project.objects.create(name="p", slug="p", group=group, allow_root=True)
    assert not project.root_allowed
    group.allow_root = True
    assert project.root_allowed


@pytest.mark.parametrize("path", ["data", "/data/../etc", "/", "/proc/x", "/etc"])
def test_mount_paths_are_absolute_and_safe(default_class, path):
    ws = WorkspaceFactory()
    volume = Volume.objects.create(project=ws.project, name="vol")
    with pytest.raises(ValidationError):
        WorkspaceMount(workspace=ws, volume=volume, mount_path=path).full_clean()


def test_effective_gpu_units_are_count_times_sm_share(default_class):
    ws = WorkspaceFactory(gpu_count=2, gpu_model="RTX 5090", gpu_sm_percentage=50)
    assert str(ws.effective_gpu_units) == "1.00"
    with pytest.raises(IntegrityError), transaction.atomic():
        Workspace.objects.filter(pk=ws.pk).update(gpu_sm_percentage=0)


def test_readable_strs(default_class):
    ws = WorkspaceFactory(name="analysis", project__name="Alice")
    assert str(ws) == "analysis (Alice)"
    assert (
        "Small" in str(ws.resource_class) or "class" in str(ws.resource_class).lower()
    )
