"""Admin → Notebook Workers: summary, filters, paging, access, escaping."""

import base64
import re
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import WorkerFactory
from tests.integration.console_support import CONSOLE, make_fleet
from workers import states
from workers.backends.base import Observation, Phase
from workers.models import WorkerEvent
from workers.services import runtime
from workers.services.runtime import HealthReport

pytestmark = [pytest.mark.django_db, pytest.mark.needs_postgres]
RUNTIME_REF = {"backend": "docker", "worker_id": "w", "name": "nb-w"}


@pytest.fixture
def fleet(alice, bob, default_class):
    return make_fleet(alice, bob)


@pytest.fixture
def staff_client(client, admin_user):
    client.force_login(admin_user)
    return client


def hand_count(workers, keep) -> dict:
    chosen = [w for w in workers if keep(w)]
    return {
        "total": len(chosen),
        "active": sum(w.status in states.ACTIVE_STATUSES for w in chosen),
        "failed": sum(w.status == "failed" for w in chosen),
        "stale": sum(w.is_stale() for w in chosen),
        "ids": {w.id for w in chosen},
    }


def metrics_in(html: str) -> dict:
    found = re.findall(r'id="metric-(\w+)">([\d,]+)<', html)
    return {name: int(value.replace(",", "")) for name, value in found}


FILTERS = [
    ("", lambda w, f: w.is_active),
    ("terminal=on", lambda w, f: True),
    ("status=failed", lambda w, f: w.status == "failed"),
    ("status=ready&status=busy", lambda w, f: w.status in ("ready", "busy")),
    ("backend=docker", lambda w, f: w.backend == "docker" and w.is_active),
    ("backend=local&terminal=on", lambda w, f: w.backend == "local"),
    ("user={alice}", lambda w, f: w.owner.username == "alice" and w.is_active),
    (
        "project={bob_project}&terminal=on",
        lambda w, f: w.project_id == f.bob_project.id,
    ),
    ("status=starting&backend=kubernetes", lambda w, f: w.status == "starting"),
]


@pytest.mark.parametrize(("query", "keep"), FILTERS)
def test_it_counts_and_lists_what_a_hand_count_finds(
    staff_client, fleet, alice, query, keep
):
    query = query.format(alice=alice.id, bob_project=fleet.bob_project.id)
    expected = hand_count(fleet.workers, lambda w: keep(w, fleet))
    response = staff_client.get(f"{CONSOLE}?{query}")
    assert response.status_code == 200
    page = response.context["page"]
    assert {w.id for w in page.rows} == expected.pop("ids")
    assert metrics_in(response.content.decode()) == expected


def test_the_stale_and_stop_failed_flags_show_on_their_rows(staff_client, fleet):
    html = staff_client.get(CONSOLE).content.decode()
    assert html.count('class="flag flag-warn">stale<') == 2
    assert html.count(">stop failed<") == 1


def test_an_explicit_terminal_status_wins_over_the_hidden_default(staff_client, fleet):
    html = staff_client.get(f"{CONSOLE}?status=failed").content.decode()
    assert "because the status filter asks for them" in html
    assert metrics_in(html)["failed"] == 3


def test_keyset_pages_walk_the_whole_list_without_overlap(staff_client, fleet):
    seen, url = [], f"{CONSOLE}?terminal=on&limit=5"
    while url:
        page = staff_client.get(url).context["page"]
        seen += [w.id for w in page.rows]
        url = f"{CONSOLE}?{page.older_query}" if page.older else None
    newest_first = sorted(fleet.workers, key=lambda w: (w.created_at, w.id))[::-1]
    assert seen == [w.id for w in newest_first]


BAD_INPUTS = [
    ("user=not-a-uuid", "user", "Enter a valid UUID."),
    ("project=123", "project", "Enter a valid UUID."),
    ("limit=-5", "limit", "greater than or equal to 1"),
    ("limit=1000000000", "limit", "less than or equal to 1000"),
    ("limit=ten", "limit", "Enter a whole number."),
    ("status=exploded", "status", "exploded is not one of the available choices"),
    ("limit=5&limit=6", "limit", "was given 2 times; give it once."),
    ("backend=docker&backend=local", "backend", "was given 2 times"),
    ("backend=mainframe", "backend", "mainframe is not one of the available"),
]


@pytest.mark.parametrize(("query", "field", "message"), BAD_INPUTS)
def test_bad_input_is_a_400_with_the_message_next_to_the_field(
    staff_client, fleet, query, field, message
):
    response = staff_client.get(f"{CONSOLE}?{query}")
    html = response.content.decode()
    assert response.status_code == 400
    error = re.search(rf'id="error-{field}">([^<]*)<', html)
    assert error and message in error.group(1).replace("&#x27;", "'")
    assert response.context["page"].rows == []
    assert 'id="metric-total"' not in html


def test_a_bad_value_stays_in_the_form_instead_of_a_silent_reset(staff_client):
    html = staff_client.get(f"{CONSOLE}?limit=-5").content.decode()
    assert 'name="limit" value="-5"' in html


def test_a_damaged_paging_cursor_is_a_400_with_a_way_back(staff_client, fleet):
    response = staff_client.get(f"{CONSOLE}?before=bm90LWEtY3Vyc29y")
    assert response.status_code == 400
    assert "This paging link is damaged" in response.content.decode()


def crafted_cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


SOME_ID = "0b7e2c1e-3f0c-4c7e-9a43-3b4f9d8b6a11"
CRAFTED_CURSORS = [
    crafted_cursor(f"2024-01-01T00:00:00+16:00|{SOME_ID}"),
    crafted_cursor(f"2024-01-01T00:00:00-23:59|{SOME_ID}"),
    crafted_cursor(f"2024-01-01T00:00:00+05:30|{SOME_ID}"),
    crafted_cursor(f"2024-01-01T00:00:00|{SOME_ID}"),
    crafted_cursor(f"99999-01-01T00:00:00+00:00|{SOME_ID}"),
    crafted_cursor(f"9999-12-31T23:59:59-23:59|{SOME_ID}"),
    crafted_cursor("2024-01-01T00:00:00+00:00|not-a-uuid"),
    crafted_cursor("2024-01-01T00:00:00+00:00"),
    crafted_cursor(f"yesterday|{SOME_ID}"),
    base64.urlsafe_b64encode(b"\xff\xfe|\x00").decode(),
    "%%%garbage%%%",
    "A",
]


@pytest.mark.parametrize(
    "cursor", CRAFTED_CURSORS, ids=[f"cursor{n}" for n in range(len(CRAFTED_CURSORS))]
)
def test_a_crafted_or_out_of_range_cursor_is_a_400_next_to_the_filters(
    staff_client, fleet, cursor
):
    response = staff_client.get(CONSOLE, {"before": cursor})
    assert response.status_code == 400
    html = response.content.decode()
    assert "These filters cannot be applied." in html
    assert "This paging link is damaged" in html
    assert response.context["page"].rows == []


def test_htmx_requests_get_the_part_they_target(staff_client, fleet):
    results = staff_client.get(
        CONSOLE, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="results"
    )
    body = staff_client.get(
        f"{CONSOLE}?limit=oops", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="console-body"
    )
    assert results.content.decode().lstrip().startswith('<section id="results"')
    assert body.status_code == 400
    assert body.content.decode().lstrip().startswith('<div id="console-body">')
    assert "<html" not in results.content.decode() + body.content.decode()


def test_the_page_links_classes_with_their_active_counts(staff_client, fleet):
    html = staff_client.get(CONSOLE).content.decode()
    active = sum(w.is_active for w in fleet.workers)
    assert f"{active} active" in html
    assert "/admin/resource_classes/resourceclass/" in html


def test_the_admin_index_links_the_console(staff_client):
    html = staff_client.get("/admin/").content.decode()
    assert f'href="{CONSOLE}">Notebook Workers</a>' in html


URLS = ["", "?terminal=on", "{id}/", "{id}/row/"]


@pytest.mark.parametrize("path", URLS)
@pytest.mark.parametrize("who", ["anonymous", "alice"])
def test_non_staff_get_no_data(client, fleet, alice, path, who):
    """Anonymous users are sent to log in; signed-in users without the
    permission get 403 (test_console_permissions covers every persona)."""
    if who == "alice":
        client.force_login(alice)
    url = CONSOLE + path.format(id=fleet.workers[0].id)
    response = client.get(url, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="results")
    if who == "alice":
        assert response.status_code == 403
    else:
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")
    assert b"a-ws" not in response.content


def test_hostile_text_is_escaped_and_secrets_never_rendered(
    staff_client, default_class
):
    token = "tok-Zq81-never-shown-9f2c"
    worker = WorkerFactory(
        name="<script>alert('name')</script>",
        status="failed",
        access_token=token,
        endpoint=f"https://bob:hunter2@gw.example/w/?token={token}",
        error_detail=f"<img src=x onerror=alert(1)> Authorization: Bearer {token}",
        gateway_metadata={"note": "<script>alert('gw')</script>", "password": "pw1"},
    )
    page = staff_client.get(f"{CONSOLE}?terminal=on").content.decode()
    row = staff_client.get(f"{CONSOLE}{worker.id}/row/").content.decode()
    detail = staff_client.get(f"{CONSOLE}{worker.id}/").content.decode()
    for html in (page, row, detail):
        assert "<script>alert(" not in html and "<img src=x" not in html
        assert token not in html and "hunter2" not in html
    assert "&lt;script&gt;alert(&#x27;name&#x27;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in detail
    assert "&lt;script&gt;alert(&#x27;gw&#x27;)&lt;/script&gt;" in detail
    assert "pw1" not in detail and "[REDACTED]" in detail


def test_the_query_count_does_not_grow_with_the_rows(staff_client, default_class):
    """Each factory worker has its own owner, project and workspace, so an
    N+1 on any of them would show."""

    def count() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as queries:
            response = staff_client.get(f"{CONSOLE}?terminal=on")
        return len(response.context["page"].rows), len(queries)

    WorkerFactory.create_batch(5, status="ready", error_code="x")
    rows_few, few = count()
    WorkerFactory.create_batch(45, status="stopped", next_action="idle stop")
    rows_many, many = count()
    assert (rows_few, rows_many) == (5, 50)
    assert many == few <= 10


class FakeBackend:
    """observe/logs as a backend answers them, or fails the way one can."""

    def __init__(self, *, fail: Exception | None = None, delay: float = 0.0):
        self.fail, self.delay = fail, delay

    def observe(self, ref):
        time.sleep(self.delay)
        if self.fail:
            raise self.fail
        return Observation(Phase.RUNNING, message="up", events=("Pulled <image>",))

    def logs(self, ref, tail=100):
        return "kernel started\nAuthorization: Bearer sekrit-token-123456"


@pytest.fixture
def docker_backend():
    yield lambda backend: runtime.override_backend("docker", backend)
    runtime.override_backend("docker", None)


def detail_of(client, worker) -> str:
    response = client.get(f"{CONSOLE}{worker.id}/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    return response.content.decode()


def test_the_detail_shows_backend_events_and_logs_sanitized(
    staff_client, default_class, docker_backend
):
    worker = WorkerFactory(backend="docker", runtime_ref=RUNTIME_REF)
    docker_backend(FakeBackend())
    html = detail_of(staff_client, worker)
    assert "Pulled &lt;image&gt;" in html and "kernel started" in html
    assert "sekrit-token-123456" not in html


@pytest.mark.parametrize(
    ("backend", "message"),
    [
        (FakeBackend(fail=RuntimeError("API down, token=abc123xyz")), "API down"),
        (FakeBackend(delay=1.0), "no answer within 0.2 s"),
    ],
)
def test_a_failing_backend_leaves_the_detail_usable(
    staff_client, default_class, docker_backend, settings, backend, message
):
    settings.NOTEBOOK_RUNTIME_PROBE_TIMEOUT_SECONDS = 0.2
    worker = WorkerFactory(backend="docker", runtime_ref=RUNTIME_REF)
    docker_backend(backend)
    html = detail_of(staff_client, worker)
    assert "Backend events unavailable" in html and message in html
    assert "abc123xyz" not in html


def test_runtime_status_probes_only_the_listed_active_workers(staff_client, fleet):
    probed = []

    def fake_probe(workers):
        probed.extend(w.id for w in workers)
        return [HealthReport("unreachable", None, message="refused")] * len(workers)

    runtime.override_probe(fake_probe)
    try:
        html = staff_client.get(f"{CONSOLE}?runtime=on&terminal=on").content.decode()
    finally:
        runtime.override_probe(None)
    assert set(probed) == {w.id for w in fleet.workers if w.is_active}
    assert html.count("badge health-unreachable") == len(probed)


def test_a_failing_probe_still_renders_the_page(staff_client, fleet):
    def broken(workers):
        raise OSError("network unreachable")

    runtime.override_probe(broken)
    try:
        response = staff_client.get(f"{CONSOLE}?runtime=on")
    finally:
        runtime.override_probe(None)
    assert response.status_code == 200
    assert "The probe gave no answer in time." in response.content.decode()


def test_the_detail_shows_the_start_snapshot_and_the_timeline(
    staff_client, default_class
):
    worker = WorkerFactory(status="ready")
    default_class.cpu_limit = "3"
    default_class.save()
    for to, reason in (("starting", "Launch"), ("ready", "Runtime answered")):
        WorkerEvent.objects.create(
            worker=worker, kind="transition", actor_type="system", to_status=to,
            reason=reason,
        )  # fmt: skip
    html = detail_of(staff_client, worker)
    assert "has changed since this worker started" in html
    assert "<dt>CPU limit</dt><dd>2</dd>" in html  # the snapshot, not the live 3
    assert html.index("Launch") < html.index("Runtime answered")
    # The class version is a time, in the page's one format, not ISO.
    assert re.search(
        r"<dt>Class version</dt><dd>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC</dd>", html
    )


def test_an_unchanged_class_has_no_change_note(staff_client, default_class):
    worker = WorkerFactory(status="ready")
    assert "has changed since" not in detail_of(staff_client, worker)
