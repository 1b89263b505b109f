"""The workspace pages: list, launch form, detail, actions, banners and
bulk delete, through the views with a real database."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.factories import WorkerFactory, WorkspaceFactory
from tests.integration.lifecycle_support import committed
from tests.integration.workspace_support import launch_data
from workers import states
from workers.models import Worker, WorkerEvent
from workspaces.explain import PLAN_WINDOW_EXPIRED
from workspaces.models import Plan, Volume, Workspace

pytest_plugins = ["tests.integration.workspace_support"]
pytestmark = [pytest.mark.django_db, pytest.mark.needs_postgres]
HTMX = {"HTTP_HX_REQUEST": "true"}


def url(name, ws=None, action=None):
    if action:
        return reverse("workspaces:action", args=[ws.id, action])
    return reverse(f"workspaces:{name}", args=[ws.id] if ws else [])


@pytest.fixture
def alice_ws(world, alice):
    return WorkspaceFactory(project=world.personal, owner=alice, name="analysis")


def page(client, user, path=None) -> str:
    client.force_login(user)
    response = client.get(path or url("list"))
    assert response.status_code == 200
    return response.content.decode()


# --- the list page ---------------------------------------------------------


def test_the_empty_list_says_what_to_do(client, world, alice):
    html = page(client, alice)
    assert 'id="empty-state"' in html and "+ New Workspace" in html
    assert "Click <strong>+ New Workspace</strong>" in html


def test_rows_show_state_gpu_project_queue_class_and_actions(client, world, alice):
    running = WorkspaceFactory(
        project=world.personal,
        owner=alice,
        name="trainer",
        resource_class=world.gpu,
        gpu_count=1,
        gpu_model="RTX 5090",
        gpu_sm_percentage=50,
    )
    WorkerFactory(workspace=running, status="ready", last_activity_at=timezone.now())
    stopped = WorkspaceFactory(project=world.personal, owner=alice, name="idle-one")
    html = page(client, alice)
    row = _row(html, running)
    assert "state-running" in row and "0.50 × RTX 5090" in row
    assert "Alice personal" in row and "Default" in row and "Gpu" in row
    assert f'href="/w/{running.id}/lab"' in row  # Open: the proxy seam
    assert 'data-action="stop"' in row and 'data-action="start"' not in row
    other = _row(html, stopped)
    assert "state-stopped" in other and "Open</a>" not in other
    assert 'data-action="start"' in other and 'data-action="delete"' in other
    assert 'name="csrfmiddlewaretoken"' in other


def test_open_is_offered_only_while_the_ide_answers(client, alice, world):
    workspace = WorkspaceFactory(project=world.personal, owner=alice, name="down")
    worker = WorkerFactory(workspace=workspace, status="ready", health="ready")
    assert f'href="/w/{workspace.id}/lab"' in _row(page(client, alice), workspace)
    Worker.objects.filter(pk=worker.pk).update(health="unreachable")
    row = _row(page(client, alice), workspace)
    assert "state-running" in row and "/w/" not in row
    assert "disabled>Open</button>" in row and "IDE not answering" in row
    detail = page(client, alice, f"/workspaces/{workspace.id}/")
    assert f'href="/w/{workspace.id}' not in detail and "not answering" in detail


def _row(html: str, ws) -> str:
    match = re.search(rf'<tr id="workspace-{ws.id}".*?</tr>', html, re.S)
    assert match, f"no row for {ws.name}"
    return match.group(0)


def test_users_see_only_their_own_workspaces(client, world, alice, bob, alice_ws):
    bobs = WorkspaceFactory(project=world.bobs, owner=bob, name="bobs-secret")
    html = page(client, alice)
    assert "analysis" in html and "bobs-secret" not in html
    assert "bulk-pick" not in html  # no IDE_MANAGE, no bulk delete
    assert f"workspace-{bobs.id}" not in html


def test_managers_see_their_projects_workspaces_with_bulk_checkboxes(
    client, world, alice, bob, personas
):
    team_ws = WorkspaceFactory(project=world.team, owner=alice, name="team-run")
    bobs = WorkspaceFactory(project=world.bobs, owner=bob, name="bobs-secret")
    html = page(client, personas.manager)
    assert "team-run" in html and "owner alice" in html
    assert "bobs-secret" not in html  # not a member of bob's project
    assert f'value="{team_ws.id}" form="bulk-form"' in html
    assert 'id="bulk-toolbar"' in html and f"workspace-{bobs.id}" not in html


def test_the_list_reads_a_constant_number_of_queries(
    client, world, alice, django_assert_max_num_queries
):
    for n in range(200):
        ws = WorkspaceFactory(project=world.personal, owner=alice, name=f"ws-{n}")
        if n % 2:
            WorkerFactory(workspace=ws, status="ready")
    client.force_login(alice)
    with django_assert_max_num_queries(12):
        response = client.get(url("list"))
    assert response.content.decode().count('class="ws-row"') == 200


# --- actions ---------------------------------------------------------------


def test_start_returns_the_updated_row_for_htmx(client, world, alice, alice_ws):
    client.force_login(alice)
    with committed(execute=False):
        response = client.post(url("", alice_ws, "start"), **HTMX)
    assert response.status_code == 200
    html = response.content.decode().strip()
    assert html.startswith(f'<tr id="workspace-{alice_ws.id}"')
    assert "state-starting" in html and "is starting" in html
    assert alice_ws.workers.get().status == states.STARTING


def test_a_refused_start_answers_409_with_the_reason(
    client, world, alice, alice_ws, settings
):
    settings.NOTEBOOK_RUNTIME_MAX_WORKERS_PER_USER = 0
    client.force_login(alice)
    response = client.post(url("", alice_ws, "start"), **HTMX)
    assert response.status_code == 409
    assert "0 of 0 workers running" in response.content.decode()
    assert not alice_ws.workers.exists()


def test_without_javascript_actions_redirect_with_a_message(
    client, world, alice, alice_ws
):
    WorkerFactory(workspace=alice_ws, status="ready")
    client.force_login(alice)
    with committed(execute=False):
        response = client.post(url("", alice_ws, "stop"), follow=True)
    assert response.redirect_chain == [(url("list"), 302)]
    assert "its volumes are kept" in response.content.decode()
    assert alice_ws.workers.get().status == states.STOPPING


def test_stop_keeps_the_workspace_and_delete_removes_it_but_not_volumes(
    client, world, alice, alice_ws
):
    alice_ws.mounts.create(volume=world.data, mount_path="/data")
    worker = WorkerFactory(workspace=alice_ws, status="ready")
    client.force_login(alice)
    with committed(execute=False):
        client.post(url("", alice_ws, "stop"), **HTMX)
    assert Workspace.objects.filter(pk=alice_ws.pk).exists()
    response = client.post(url("", alice_ws, "delete"), **HTMX)
    # The row is removed by its id (out of band), whichever element is shown.
    assert response.status_code == 200
    assert response.content.decode() == (
        f'<tr id="workspace-{alice_ws.pk}" hx-swap-oob="delete"></tr>'
    )
    assert not Workspace.objects.filter(pk=alice_ws.pk).exists()
    assert Volume.objects.filter(pk=world.data.pk).exists()
    worker.refresh_from_db()
    assert worker.workspace_id is None  # the history stays


def test_delete_works_even_when_the_last_stop_failed(client, world, alice, alice_ws):
    stuck = WorkerFactory(
        workspace=alice_ws,
        status="stopping",
        error_code="stop_internal",
        error_detail="terminate failed",
    )
    client.force_login(alice)
    response = client.post(url("", alice_ws, "delete"), follow=True)
    assert response.status_code == 200
    assert not Workspace.objects.filter(pk=alice_ws.pk).exists()
    stuck.refresh_from_db()
    assert stuck.status == states.STOPPING  # reconcile removes the runtime
    assert stuck.events.filter(reason="Workspace analysis deleted").exists()


def test_actions_and_pages_enforce_csrf(world, alice, alice_ws):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    for path in (
        url("", alice_ws, "start"),
        url("", alice_ws, "delete"),
        url("new"),
        url("validate"),
        url("bulk_delete"),
    ):
        assert client.post(path, launch_data(world)).status_code == 403, path
    assert Workspace.objects.filter(pk=alice_ws.pk).exists()
    assert not Worker.objects.exists()


def test_another_users_workspace_is_404_on_every_page_and_action(
    client, world, alice, bob, alice_ws
):
    client.force_login(bob)
    assert client.get(url("detail", alice_ws)).status_code == 404
    for action in ("start", "stop", "delete", "switch-queue", "nope"):
        response = client.post(url("", alice_ws, action), **HTMX)
        assert response.status_code == 404, action
    response = client.post(url("bulk_delete"), {"workspace": [str(alice_ws.id)]})
    assert "not one you may manage" in response.content.decode()
    assert Workspace.objects.filter(pk=alice_ws.pk).exists()
    assert not alice_ws.workers.exists()


# --- bulk delete -----------------------------------------------------------


def test_bulk_delete_authorizes_each_workspace_on_its_own(
    client, world, alice, bob, personas
):
    team_ws = WorkspaceFactory(project=world.team, owner=alice, name="team-run")
    own = WorkspaceFactory(project=world.team, owner=personas.manager, name="mine")
    bobs = WorkspaceFactory(project=world.bobs, owner=bob, name="bobs-secret")
    client.force_login(personas.manager)
    ids = [str(team_ws.id), str(own.id), str(bobs.id), "not-a-uuid"]
    response = client.post(url("bulk_delete"), {"workspace": ids}, **HTMX)
    html = response.content.decode().strip()
    assert response.status_code == 200 and 'id="bulk-result"' in html
    assert "Deleted 2:" in html and "team-run (alice)" in html
    assert "Refused 2:" in html and "bobs-secret" not in html
    assert f"<code>{bobs.id}</code>: no such workspace" in html
    assert list(Workspace.objects.values_list("name", flat=True)) == ["bobs-secret"]


def test_without_the_permission_bulk_delete_reaches_only_own_workspaces(
    client, world, alice, personas
):
    managers = WorkspaceFactory(project=world.team, owner=personas.manager)
    mine = WorkspaceFactory(project=world.team, owner=alice, name="mine")
    client.force_login(alice)
    response = client.post(
        url("bulk_delete"), {"workspace": [str(managers.id), str(mine.id)]}
    )
    assert "Deleted 1:" in response.content.decode()
    assert Workspace.objects.filter(pk=managers.pk).exists()


# --- the launch form page --------------------------------------------------


def test_the_form_page_defaults_to_the_personal_project(client, world, alice):
    html = page(client, alice, url("new"))
    assert f'<option value="{world.personal.pk}" selected>' in html
    assert 'name="mount_volume"' in html and "Root shell: not allowed" in html
    assert 'hx-post="/workspaces/new/validate?field=name"' in html


def test_a_valid_post_creates_starts_and_lands_on_the_detail_page(client, world, alice):
    client.force_login(alice)
    with committed(execute=False):
        response = client.post(url("new"), launch_data(world))
    workspace = Workspace.objects.get(name="analysis")
    assert response.status_code == 302
    assert response["Location"] == url("detail", workspace)
    assert workspace.workers.get().status == states.STARTING


@pytest.mark.parametrize(
    "overrides, field, message",
    [
        ({"name": "x" * 10_000}, "name", "at most 63"),
        ({"gpu_sm_percentage": "101"}, "gpu_sm_percentage", "less than or equal"),
        ({"image": "evil/miner:1"}, "image", "allowlist"),
    ],
)
def test_bad_input_answers_400_at_the_field_keeping_what_was_typed(
    client, world, alice, overrides, field, message
):
    client.force_login(alice)
    data = launch_data(world, mounts=[(world.data, "/data")], **overrides)
    data["memory_limit"] = "2Gi"
    response = client.post(url("new"), data)
    html = response.content.decode().strip()
    assert response.status_code == 400
    assert re.search(rf'id="error-{field}">[^<]*{message}', html), html[-3000:]
    assert 'value="2Gi"' in html and 'value="/data"' in html
    assert not Workspace.objects.exists()


def test_nul_bytes_are_a_400_and_create_nothing(client, world, alice):
    client.force_login(alice)
    response = client.post(url("new"), launch_data(world, name="bad\x00name"))
    assert response.status_code == 400
    assert not Workspace.objects.exists()


def test_a_quota_refusal_is_shown_at_the_field(client, world, alice):
    WorkerFactory(
        workspace=WorkspaceFactory(project=world.personal, owner=alice),
        gpu_units=1,
        gpu_model="RTX 5090",
    )
    client.force_login(alice)
    data = launch_data(world, resource_class="gpu", gpu_count="1", gpu_model="RTX 5090")
    response = client.post(url("new"), data)
    assert response.status_code == 400
    assert "has 1.0 of 1.5 GPUs in use" in response.content.decode()
    assert not Workspace.objects.filter(name="analysis").exists()


def test_add_another_volume_works_without_javascript(client, world, alice):
    client.force_login(alice)
    data = launch_data(world, mounts=[(world.data, "/data")], add_mount="1")
    response = client.post(url("new"), data)
    html = response.content.decode().strip()
    assert response.status_code == 200 and not Workspace.objects.exists()
    assert html.count('name="mount_path"') == 3  # the typed one + two blank
    assert "field-error" not in html


def test_htmx_validates_the_changed_field(client, world, alice):
    client.force_login(alice)
    response = client.post(
        url("validate") + "?field=name", launch_data(world, name="Bad Name"), **HTMX
    )
    html = response.content.decode().strip()
    assert html.startswith('<div class="field f-name has-error" id="field-name"')
    assert 'id="error-name"' in html and "Lowercase" not in html.split("error")[0]
    response = client.post(
        url("validate") + "?field=mounts",
        launch_data(world, mounts=[(world.data, "/etc")]),
        **HTMX,
    )
    assert "system path" in response.content.decode()
    response = client.post(
        url("validate") + "?field=mounts",
        launch_data(world, mounts=[(world.data, "")]),
        **HTMX,
    )
    html = response.content.decode()
    assert "field-error" not in html  # still typing: a path comes next
    assert html.count('name="mount_path"') == 2
    response = client.post(
        url("validate") + "?field=project",
        launch_data(world, project=str(world.team.pk), name=""),
        **HTMX,
    )
    html = response.content.decode().strip()
    assert html.startswith('<form id="launch-form"')
    assert 'id="error-name"' not in html  # only the changed field's errors
    assert not Workspace.objects.exists()


# --- the detail page -------------------------------------------------------


def test_the_detail_page_explains_an_error_in_plain_words_sanitized(
    client, world, alice, alice_ws
):
    worker = WorkerFactory(
        workspace=alice_ws,
        status="failed",
        error_code="image_pull_failed",
        access_token="tok-Secret-0123456789",
    )
    Worker.objects.filter(pk=worker.pk).update(
        error_detail=f"pull failed with token {worker.access_token}"
    )
    html = page(client, alice, url("detail", alice_ws))
    assert "Image pull failure." in html and "project allowlist" in html
    assert worker.access_token not in html and "[REDACTED]" in html
    assert 'data-action="start">Start again' in html


def test_detail_page_actions_answer_with_the_panel_and_delete_goes_to_the_list(
    client, world, alice, alice_ws
):
    WorkerFactory(workspace=alice_ws, status="ready")
    client.force_login(alice)
    with committed(execute=False):
        response = client.post(url("", alice_ws, "stop"), {"from": "detail"}, **HTMX)
    html = response.content.decode().strip()
    assert html.startswith('<div id="workspace-detail"')
    assert 'id="detail-state">Stopping' in html and 'id="detail-outcome"' in html
    response = client.post(url("", alice_ws, "delete"), {"from": "detail"}, **HTMX)
    assert response["HX-Redirect"] == url("list")
    assert not Workspace.objects.filter(pk=alice_ws.pk).exists()


def test_the_detail_page_explains_a_plan_window_stop(client, world, alice, alice_ws):
    worker = WorkerFactory(workspace=alice_ws, status="ready")
    with committed():
        from workers.services import workers_request_stop

        workers_request_stop(
            worker_ids=[worker.id], actor_type="system", reason=PLAN_WINDOW_EXPIRED
        )
    html = page(client, alice, url("detail", alice_ws))
    assert "Plan window expired." in html and "default queue" in html


def test_the_detail_page_shows_start_progress_mounts_and_timeline(
    client, world, alice, alice_ws
):
    alice_ws.mounts.create(volume=world.data, mount_path="/data")
    worker = WorkerFactory(workspace=alice_ws, status="starting")
    WorkerEvent.objects.create(
        worker=worker,
        kind="progress",
        actor_type="backend",
        reason="Runtime local-abc created",
    )
    html = page(client, alice, url("detail", alice_ws))
    assert 'id="start-progress"' in html and "Runtime local-abc created" in html
    assert "Waiting for the IDE to answer" in html
    assert "<code>/data</code>" in html and 'id="timeline"' in html
    assert "UTC" in html


# --- banners and the default-queue switch -----------------------------------


def _plan_queue_workspace(world, alice, **window):
    Plan.objects.filter(pk=world.plan.pk).update(**window)
    return WorkspaceFactory(
        project=world.personal, owner=alice, name="windowed", queue=world.interactive
    )


def test_the_idle_warning_says_when_it_stops_unless_used(client, world, alice):
    ws = WorkspaceFactory(project=world.personal, owner=alice, name="sleepy")
    WorkerFactory(
        workspace=ws,
        status="ready",
        next_action=states.NEXT_IDLE_STOP,
        next_action_at=timezone.now() + timedelta(minutes=8, seconds=30),
    )
    html = page(client, alice)
    assert "<strong>sleepy</strong> stops in 9 min unless used" in html


def test_an_open_plan_window_counts_down_from_the_server_deadline(client, world, alice):
    now = timezone.now()
    ws = _plan_queue_workspace(
        world,
        alice,
        window_kind="one_off",
        window_start=now - timedelta(hours=1),
        window_end=now + timedelta(hours=2, minutes=5),
    )
    WorkerFactory(workspace=ws, status="ready", plan_bound=True)
    html = page(client, alice)
    match = re.search(r'Plan window closes in <strong><time class="countdown" '
                      r'data-deadline="([^"]+)"[^>]*>(\d\d:\d\d:\d\d)<', html)  # fmt: skip
    assert match and match.group(2).startswith("02:0")
    assert "windowed will be stopped then" in html


def test_after_the_window_switch_to_default_queue_restarts_an_evicted_workspace(
    client, world, alice
):
    now = timezone.now()
    ws = _plan_queue_workspace(
        world,
        alice,
        window_kind="one_off",
        window_start=now - timedelta(hours=2),
        window_end=now - timedelta(minutes=1),
    )
    evicted = WorkerFactory(workspace=ws, status="ready", plan_bound=True)
    with committed(execute=False):
        from workers.services import workers_request_stop, workers_transition

        workers_request_stop(
            worker_ids=[evicted.id], actor_type="system", reason=PLAN_WINDOW_EXPIRED
        )
        workers_transition(
            worker_ids=[evicted.id],
            expected=states.STOPPING,
            to=states.STOPPED,
            actor_type="backend",
        )
    html = page(client, alice)
    assert f'id="window-expired-{ws.id}"' in html and "Switch to Default Queue" in html
    with committed(execute=False):
        response = client.post(url("", ws, "switch-queue"), follow=True)
    assert "to the default queue and started it again" in response.content.decode()
    ws.refresh_from_db()
    assert ws.queue.is_default
    new = ws.workers.order_by("-created_at").first()
    assert new.status == states.STARTING and not new.plan_bound
