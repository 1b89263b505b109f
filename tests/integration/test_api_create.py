"""POST /api/v1/ide: create and start through the launch form: the same
rules and the same messages as /workspaces/new, at the same fields; 201 on
success, 422 for bad input, 409 naming the limit; nothing created on a
refusal."""

import pytest
from django.http import QueryDict
from django.test import TestCase

from tests.factories import WorkerFactory, WorkspaceFactory
from tests.integration.api_support import API
from tests.integration.workspace_support import IMAGE, launch_data
from workers import states
from workspaces.forms import WorkspaceLaunchForm
from workspaces.models import Workspace, WorkspaceMount

pytest_plugins = [
    "tests.integration.api_support",
    "tests.integration.workspace_support",
]
pytestmark = [pytest.mark.django_db, pytest.mark.needs_postgres]


def payload(world, **overrides) -> dict:
    data = {
        "project": str(world.personal.pk),
        "name": "analysis",
        "image": IMAGE,
        "mounts": [{"volume": world.data.pk, "path": "/data"}],
    }
    return {**data, **overrides}


def form_errors(world, user, **html) -> dict:
    """What /workspaces/new answers for the same values, posted as HTML."""
    query = QueryDict(mutable=True)
    for key, value in launch_data(world, **html).items():
        query.setlist(key, value if isinstance(value, list) else [value])
    form = WorkspaceLaunchForm(query, user=user)
    assert not form.is_valid()
    return {f: list(messages) for f, messages in form.errors.items()}


def test_it_creates_and_starts_a_workspace_201(api, world, tasks):
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = api.post_json(f"{API}/ide", payload(world))
    assert response.status_code == 201, response.json()
    body = response.json()
    workspace = Workspace.objects.get(name="analysis")
    assert body["id"] == str(workspace.id) and body["status"] == "Starting"
    assert body["url"] == f"/w/{workspace.id}/lab"
    assert body["mounts"] == [{"volume": "data", "mount_path": "/data"}]
    assert body["worker"]["status"] == states.STARTING
    assert tasks.sent == [("start_worker", body["worker"]["id"])]


def test_left_out_fields_take_the_forms_defaults(api, world, tasks):
    response = api.post_json(f"{API}/ide", {"name": "quick", "image": IMAGE})
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["project"]["id"] == str(world.personal.pk)
    assert (body["queue"], body["resource_class"]) == ("default", "small")
    # No CPU / memory given: the plan's defaults, as the form does.
    assert (body["cpu_limit"], body["memory_limit"]) == ("4", "8Gi")


BAD_VALUES = [
    ("name", "x" * 10_000, None),
    ("name", "ana\x00lysis", None),
    ("name", "Bad_Name", None),
    ("image", "evil/miner:latest", None),
    ("gpu_sm_percentage", 0, "0"),
    ("gpu_sm_percentage", 101, "101"),
    ("gpu_count", -1, "-1"),
    ("gpu_model", "H100", None),
    ("root_shell", True, "on"),
    ("queue", "other-plans", None),
    ("cpu_limit", "8", None),
]


@pytest.mark.parametrize(("field", "value", "html"), BAD_VALUES)
def test_bad_values_get_the_forms_message_at_the_field(
    api, world, alice, field, value, html
):
    response = api.post_json(f"{API}/ide", payload(world, **{field: value}))
    assert response.status_code == 422, response.json()
    expected = form_errors(world, alice, **{field: html if html else value})
    assert response.json()["errors"] == expected
    assert not Workspace.objects.exists()


def test_a_project_the_user_is_not_in_is_refused(api, world, alice):
    response = api.post_json(f"{API}/ide", payload(world, project=str(world.bobs.pk)))
    assert response.status_code == 422
    assert response.json()["errors"]["project"] == ["Pick one of your projects."]
    assert not world.bobs.workspaces.exists()


@pytest.mark.parametrize(
    ("resource_class", "count", "message"),
    [("small", 1, "offers no GPUs"), ("gpu", 3, "at most 2 GPUs")],
)
def test_a_gpu_count_above_the_class_maximum_is_refused(
    api, world, resource_class, count, message
):
    body = payload(
        world, resource_class=resource_class, gpu_count=count, gpu_model="RTX 5090"
    )
    response = api.post_json(f"{API}/ide", body)
    assert response.status_code == 422
    assert message in response.json()["errors"]["gpu_count"][0]


@pytest.mark.parametrize("path", ["/etc", "/", "../x", "/data/../etc"])
def test_bad_mount_paths_are_refused(api, world, alice, path):
    mounts = [{"volume": world.data.pk, "path": path}]
    response = api.post_json(f"{API}/ide", payload(world, mounts=mounts))
    assert response.status_code == 422
    expected = form_errors(world, alice, mounts=[(world.data, path)])
    assert response.json()["errors"] == expected
    assert not WorkspaceMount.objects.exists()


def test_a_duplicate_mount_path_is_refused(api, world):
    mounts = [
        {"volume": world.data.pk, "path": "/data"},
        {"volume": world.scratch.pk, "path": "/data/"},
    ]
    response = api.post_json(f"{API}/ide", payload(world, mounts=mounts))
    assert response.status_code == 422
    assert "used by two mounts" in response.json()["errors"]["mounts"][0]


def test_a_volume_of_another_project_is_refused(api, world):
    mounts = [{"volume": world.bobs_volume.pk, "path": "/data"}]
    response = api.post_json(f"{API}/ide", payload(world, mounts=mounts))
    assert response.status_code == 422
    assert "not one of this project's volumes" in response.json()["errors"]["mounts"][0]


def test_a_duplicate_name_is_refused(api, world, alice):
    WorkspaceFactory(project=world.personal, owner=alice, name="analysis")
    response = api.post_json(f"{API}/ide", payload(world))
    assert response.status_code == 422
    assert (
        "already has a workspace named analysis" in response.json()["errors"]["name"][0]
    )
    assert Workspace.objects.count() == 1


def test_a_wrongly_typed_value_is_a_422_at_its_field(api, world):
    response = api.post_json(f"{API}/ide", payload(world, gpu_count="many"))
    assert response.status_code == 422
    assert list(response.json()["errors"]) == ["gpu_count"]


@pytest.mark.parametrize("body", ["{not json", "[1, 2]", '"just a string"'])
def test_a_body_that_is_not_a_json_object_is_a_clear_4xx(api, body):
    response = api.post(f"{API}/ide", body, content_type="application/json")
    assert response.status_code in (400, 422)
    assert response.json()["detail"]


def test_over_quota_is_409_naming_the_limit_used_and_asked(api, world, alice, tasks):
    WorkerFactory(
        workspace=WorkspaceFactory(project=world.personal, owner=alice),
        status=states.READY,
        gpu_units=1,
        gpu_model="RTX 5090",
    )
    body = payload(world, resource_class="gpu", gpu_count=1, gpu_model="RTX 5090")
    response = api.post_json(f"{API}/ide", body)
    assert response.status_code == 409
    refusal = response.json()
    assert refusal["limit"] == "project_gpu_quota"
    assert (
        "has 1.0 of 1.5 GPUs in use and this workspace needs 1.0" in refusal["detail"]
    )
    assert refusal["errors"]["gpu_count"] == [refusal["detail"]]
    assert not Workspace.objects.filter(name="analysis").exists()


def test_the_per_user_limit_is_409_naming_it(api, world, alice, tasks, settings):
    settings.NOTEBOOK_RUNTIME_MAX_WORKERS_PER_USER = 1
    WorkerFactory(workspace=WorkspaceFactory(project=world.personal, owner=alice))
    response = api.post_json(f"{API}/ide", payload(world))
    assert response.status_code == 409
    refusal = response.json()
    assert refusal["limit"] == "max_workers_per_user"
    assert "1 of 1 workers running" in refusal["detail"]
    assert "NOTEBOOK_RUNTIME_MAX_WORKERS_PER_USER" in refusal["detail"]
    assert not Workspace.objects.filter(name="analysis").exists()
