"""/api/v1/ide: list, get, start, stop, delete and events of one's own
workspaces; every answer checked against the served OpenAPI document."""

import base64
import uuid

import pytest

from tests.factories import ProjectFactory, WorkerFactory, WorkspaceFactory
from tests.integration.api_support import API, ApiClient
from workers import states
from workers.models import Worker, WorkerEvent
from workers.services import worker_record_event
from workspaces.models import Workspace

pytest_plugins = ["tests.integration.api_support"]
pytestmark = [pytest.mark.django_db, pytest.mark.needs_postgres]


@pytest.fixture
def project(alice):
    return ProjectFactory(personal_owner=alice, name="Alice's", slug="alice")


def test_it_lists_only_my_workspaces_with_status_and_url(api, alice, bob, project):
    mine = WorkspaceFactory(project=project, name="analysis")
    WorkerFactory(workspace=mine, status=states.READY)
    WorkspaceFactory(project=ProjectFactory(personal_owner=bob), name="bobs")
    response = api.get(f"{API}/ide")
    assert response.status_code == 200
    [item] = response.json()["results"]
    assert item["id"] == str(mine.id) and item["name"] == "analysis"
    assert item["status"] == "Running"
    assert item["url"] == f"/w/{mine.id}/lab"
    assert item["project"] == {
        "id": str(project.id),
        "name": "Alice's",
        "slug": "alice",
    }


def test_it_pages_newest_first_with_an_opaque_cursor(api, project):
    made = [WorkspaceFactory(project=project) for _ in range(5)]
    seen, url = [], f"{API}/ide?page_size=2"
    while url:
        page = api.get(url).json()
        seen += [item["id"] for item in page["results"]]
        url = page["next"]
    assert seen == [str(ws.id) for ws in reversed(made)]


@pytest.mark.parametrize(
    ("worker_status", "shown"),
    [
        (None, "Stopped"),
        (states.STARTING, "Starting"),
        (states.BUSY, "Running"),
        (states.STOPPING, "Stopping"),
        (states.STOPPED, "Stopped"),
        (states.FAILED, "Error"),
    ],
)
def test_it_filters_by_status(api, project, worker_status, shown):
    target = WorkspaceFactory(project=project)
    if worker_status:
        WorkerFactory(workspace=target, status=worker_status)
    other = WorkspaceFactory(project=project)
    other_status = states.FAILED if shown != "Error" else states.READY
    WorkerFactory(workspace=other, status=other_status)
    page = api.get(f"{API}/ide", {"status": shown}).json()
    assert [item["id"] for item in page["results"]] == [str(target.id)]
    assert page["results"][0]["status"] == shown


def test_it_filters_by_project(api, alice, project):
    group_project = ProjectFactory(personal_owner=alice)
    wanted = WorkspaceFactory(project=group_project, owner=alice)
    WorkspaceFactory(project=project)
    page = api.get(f"{API}/ide", {"project": str(group_project.id)}).json()
    assert [item["id"] for item in page["results"]] == [str(wanted.id)]


@pytest.mark.parametrize(
    ("query", "field"),
    [({"status": "Sleeping"}, "status"), ({"project": "not-a-uuid"}, "project")],
)
def test_it_refuses_a_bad_filter_naming_it(api, query, field):
    response = api.get(f"{API}/ide", query)
    assert response.status_code == 422
    assert list(response.json()["errors"]) == [field]


@pytest.mark.parametrize(
    "cursor",
    [
        "%%%not-base64",
        base64.b64encode(b"p=yesterday").decode(),
        base64.b64encode(b"o=-5").decode(),
        base64.b64encode(b"o=999999999999").decode(),
    ],
)
def test_it_answers_a_tampered_cursor_with_400(api, project, cursor):
    WorkspaceFactory(project=project)
    response = api.get(f"{API}/ide", {"cursor": cursor})
    assert response.status_code == 400
    assert "cursor" in response.json()["detail"]


def test_it_shows_one_workspace_with_its_sanitized_error(api, project):
    workspace = WorkspaceFactory(project=project, name="broken")
    worker = WorkerFactory(
        workspace=workspace,
        status=states.FAILED,
        error_code="image_pull",
        access_token="tok-secret-123456",
    )
    Worker.objects.filter(pk=worker.pk).update(
        error_detail="pull failed for http://bob:hunter2@registry.local with tok-secret-123456"
    )
    body = api.get(f"{API}/ide/{workspace.id}").json()
    assert body["status"] == "Error"
    assert body["worker"]["error"]["code"] == "image_pull"
    detail = body["worker"]["error"]["detail"]
    assert "hunter2" not in detail and "tok-secret-123456" not in detail
    assert "[REDACTED]" in detail


def test_it_starts_a_stopped_workspace_with_202(api, project, tasks):
    workspace = WorkspaceFactory(project=project)
    response = api.post(f"{API}/ide/{workspace.id}/start")
    assert response.status_code == 202
    assert response.json()["status"] == "Starting"
    assert workspace.workers.get().status == states.STARTING


def test_it_refuses_a_start_over_the_per_user_limit_with_409(
    api, project, tasks, settings
):
    settings.NOTEBOOK_RUNTIME_MAX_WORKERS_PER_USER = 1
    WorkerFactory(workspace=WorkspaceFactory(project=project), status=states.READY)
    workspace = WorkspaceFactory(project=project)
    response = api.post(f"{API}/ide/{workspace.id}/start")
    assert response.status_code == 409
    body = response.json()
    assert body["limit"] == "max_workers_per_user"
    assert "1 of 1 workers" in body["detail"]
    assert not workspace.workers.exists()


def test_it_refuses_starting_a_running_workspace_with_409(api, project, tasks):
    workspace = WorkspaceFactory(project=project)
    WorkerFactory(workspace=workspace, status=states.READY)
    response = api.post(f"{API}/ide/{workspace.id}/start")
    assert response.status_code == 409
    assert response.json()["limit"] == "workspace_active"


def test_it_stops_a_running_workspace_with_202(api, project, tasks):
    workspace = WorkspaceFactory(project=project)
    worker = WorkerFactory(workspace=workspace, status=states.READY)
    response = api.post(f"{API}/ide/{workspace.id}/stop")
    assert response.status_code == 202
    assert response.json()["status"] == "Stopping"
    worker.refresh_from_db()
    assert worker.status == states.STOPPING


def test_it_deletes_even_when_the_last_stop_failed(api, project, tasks):
    workspace = WorkspaceFactory(project=project)
    worker = WorkerFactory(
        workspace=workspace, status=states.STOPPING, error_code="stop_failed"
    )
    response = api.delete(f"{API}/ide/{workspace.id}")
    assert response.status_code == 204
    assert not Workspace.objects.filter(pk=workspace.pk).exists()
    worker.refresh_from_db()
    assert worker.workspace_id is None and worker.status == states.STOPPING
    assert api.get(f"{API}/ide/{workspace.id}").status_code == 404


def test_it_lists_the_timeline_newest_first_with_reasons_sanitized(api, project):
    workspace = WorkspaceFactory(project=project)
    worker = WorkerFactory(workspace=workspace, access_token="tok-abcdef-987654")
    for reason in ("first", "runtime said tok-abcdef-987654", "password=hunter2"):
        worker_record_event(
            worker_id=worker.id, kind="progress", actor_type="backend", reason=reason
        )
    # A stored reason that escaped sanitizing is still redacted on the way out.
    WorkerEvent.objects.create(
        worker=worker,
        kind="error",
        actor_type="backend",
        reason="leak tok-abcdef-987654",
    )
    page = api.get(f"{API}/ide/{workspace.id}/events").json()
    reasons = [event["reason"] for event in page["results"]]
    assert reasons[-1] == "first" and len(reasons) == 4
    assert not any("tok-abcdef" in r or "hunter2" in r for r in reasons)


# --- IDOR: another user's workspace id is a 404, never its data ------------


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("get", ""),
        ("delete", ""),
        ("post", "/start"),
        ("post", "/stop"),
        ("get", "/events"),
    ],
)
def test_it_answers_404_for_another_users_workspace(api, bob, tasks, method, suffix):
    theirs = WorkspaceFactory(project=ProjectFactory(personal_owner=bob), name="bobs")
    worker = WorkerFactory(workspace=theirs, status=states.READY)
    response = getattr(api, method)(f"{API}/ide/{theirs.id}{suffix}")
    assert response.status_code == 404
    assert (
        b"bobs" not in response.content
        and str(worker.id).encode() not in response.content
    )
    missing = getattr(api, method)(f"{API}/ide/{uuid.uuid4()}{suffix}")
    assert (missing.status_code, missing.json()) == (404, response.json())
    worker.refresh_from_db()
    assert (
        worker.status == states.READY
        and Workspace.objects.filter(pk=theirs.pk).exists()
    )


def test_it_answers_422_for_a_malformed_id(api):
    response = api.get(f"{API}/ide/not-a-uuid")
    assert response.status_code == 422
    assert list(response.json()["errors"]) == ["workspace_id"]


def test_it_never_lists_another_users_workspace_even_filtering_by_their_project(
    api, bob
):
    theirs = ProjectFactory(personal_owner=bob)
    WorkspaceFactory(project=theirs)
    page = api.get(f"{API}/ide", {"project": str(theirs.id)}).json()
    assert page["results"] == []


def test_a_session_client_sees_the_same(alice, project):
    workspace = WorkspaceFactory(project=project)
    client = ApiClient()
    client.force_login(alice)
    assert client.get(f"{API}/ide/{workspace.id}").json()["id"] == str(workspace.id)
