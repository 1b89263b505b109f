"""Admin → Notebook Workers → Fleet health: the chart data equals hand
counts of a known history, buckets split where they should, workers by
status is rebuilt exactly, who may see it, bad ranges, and a query count
that does not grow with the fleet."""

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils.html import escape

from console import health_selectors
from console.health_selectors import fleet_health
from tests.factories import ProjectFactory, UserFactory, WorkerFactory
from tests.integration.lifecycle_support import committed, start
from workers import services, states
from workers.models import Actor, EventKind, Worker, WorkerEvent
from workers.services import worker_transition

pytest_plugins = ["tests.integration.lifecycle_support"]
pytestmark = [pytest.mark.django_db, pytest.mark.needs_postgres]
HEALTH = "/admin/notebook-workers/health/"
DATA = f"{HEALTH}data.json"
NOW = datetime(2026, 3, 10, 14, 30, tzinfo=UTC)  # window: Mar 9 15:00 → now


def at(text: str) -> datetime:
    """'HH:MM:SS[.ffffff]' on NOW's day, or a full ISO time, in UTC."""
    if "T" in text:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    return datetime.fromisoformat(f"2026-03-10T{text}").replace(tzinfo=UTC)


class History:
    """Drives workers through the real transition service at chosen times
    and keeps its own log, the hand count the charts are compared with."""

    def __init__(self):
        self.log: list[tuple[datetime, object, str]] = []

    def born(self, when: datetime, **extra) -> Worker:
        with time_machine.travel(when, tick=False):
            worker = WorkerFactory(
                status=states.STARTING, created_at=when, backend="local", **extra
            )
        self.log.append((when, worker.id, states.STARTING))
        return worker

    def move(self, worker: Worker, to: str, when: datetime, label: str = "") -> None:
        current = Worker.objects.get(id=worker.id).status
        with time_machine.travel(when, tick=False):
            assert worker_transition(
                worker_id=worker.id, expected=current, to=to,
                actor_type=Actor.SYSTEM, actor_label=label,
                fields={"error_code": "gone"} if to == states.FAILED else None,
            )  # fmt: skip
        self.log.append((when, worker.id, to))

    def status_at(self, moment: datetime) -> dict[str, int]:
        """Each worker's latest status before ``moment``, counted."""
        latest: dict = {}
        for when, worker_id, status in sorted(self.log, key=lambda e: e[0]):
            if when < moment:
                latest[worker_id] = status
        counts = dict.fromkeys(health_selectors.SHOWN_STATUSES, 0)
        for status in latest.values():
            if status in counts:
                counts[status] += 1
        return counts


def viewer_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def history(default_class):
    """The known day (NOW = 2026-03-10 14:30 UTC)."""
    h = History()
    w1 = h.born(at("09:10:00"))
    h.move(w1, states.READY, at("09:10:30"))  # 30 s
    w2 = h.born(at("09:20:00"))
    h.move(w2, states.READY, at("09:21:30"))  # 90 s
    w3 = h.born(at("09:40:00"))
    h.move(w3, states.FAILED, at("09:45:00"), "start_worker")
    w6 = h.born(at("10:00:00"))
    h.move(w6, states.STOPPING, at("10:05:00"), "alice")  # cancelled
    h.move(w6, states.STOPPED, at("10:06:00"))
    w4 = h.born(at("12:58:59.999999"))
    h.move(w4, states.READY, at("12:59:59.999999"))  # last instant of 12:00
    w5 = h.born(at("12:59:30"))
    h.move(w5, states.READY, at("13:00:00"))  # first instant of 13:00
    w7 = h.born(at("2026-03-09T14:50:00"))  # before the window
    h.move(w7, states.READY, at("2026-03-09T14:59:59"))
    w8 = h.born(at("11:00:00"))
    h.move(w8, states.READY, at("11:01:00"))
    h.move(w8, states.STOPPING, at("13:30:00"), "reap_idle")
    h.move(w8, states.STOPPED, at("13:31:00"))
    w9 = h.born(at("08:00:00"))
    h.move(w9, states.READY, at("08:01:00"))
    h.move(w9, states.BUSY, at("08:30:00"))
    h.move(w9, states.FAILED, at("14:20:00"), "reconcile_workers")  # vanished
    w10 = h.born(at("14:25:00"))  # still starting now
    with time_machine.travel(at("14:10:00"), tick=False):
        WorkerEvent.objects.create(
            worker=w6, kind=EventKind.AUTOMATION, actor_type=Actor.SYSTEM,
            actor_label="reconcile_workers",
            reason="Orphaned runtime nb-w6 terminated",
        )  # fmt: skip
    w11 = h.born(at("2026-03-09T13:00:00"))
    h.move(w11, states.READY, at("2026-03-09T13:00:05"))
    h.move(w11, states.STOPPING, at("2026-03-09T14:59:59"), "reap_idle")  # before
    return {"history": h, "w10": w10}


def bucket(hour: int) -> int:
    """Index of the hour bucket starting at ``hour``:00 on NOW's day."""
    return hour + 24 - 15


@pytest.fixture
def read(personas):
    client = viewer_client(personas.operator)

    def get(range_key: str = "24h") -> dict:
        with time_machine.travel(NOW, tick=False):
            response = client.get(DATA, {"range": range_key})
        assert response.status_code == 200, response.content
        return response.json()

    return get


# --- the numbers ----------------------------------------------------------------


def test_starts_and_failures_per_hour_equal_the_hand_count(history, read):
    data = read()
    assert data["buckets"][0] == "2026-03-09T15:00:00+00:00"
    assert data["buckets"][-1] == "2026-03-10T14:00:00+00:00"
    expected = {kind: [0] * 24 for kind in ("ready", "failed", "cancelled")}
    for hour, kind, n in [
        (8, "ready", 1), (9, "ready", 2), (9, "failed", 1), (10, "cancelled", 1),
        (11, "ready", 1), (12, "ready", 1), (13, "ready", 1),
    ]:  # fmt: skip
        expected[kind][bucket(hour)] = n
    assert data["starts"] == expected


def test_an_event_on_an_hour_boundary_belongs_to_the_hour_it_starts(history, read):
    starts = read()["starts"]["ready"]
    assert starts[bucket(12)] == 1  # 12:59:59.999999
    assert starts[bucket(13)] == 1  # 13:00:00.000000
    assert sum(starts) == 6  # the ready at 14:59:59 yesterday is outside


def test_time_to_ready_percentiles_per_hour(history, read):
    durations = read()["start_to_ready_seconds"]
    p50, p95 = durations["p50"], durations["p95"]
    assert p50[bucket(9)] == 60.0  # of 30 s and 90 s
    assert p95[bucket(9)] == 87.0  # 30 + 0.95 × 60
    assert (p50[bucket(8)], p50[bucket(11)], p50[bucket(12)]) == (60.0, 60.0, 60.0)
    assert p50[bucket(13)] == 30.0
    assert p50[bucket(10)] is None and p50[bucket(14)] is None  # no ready start


def test_the_portable_percentiles_give_the_same_numbers(history, monkeypatch):
    in_sql = health_selectors.start_series(_window())
    monkeypatch.setattr(health_selectors, "_sql_percentiles", lambda: False)
    portable = health_selectors.start_series(_window())
    assert portable == in_sql
    assert in_sql[1][bucket(9)] == 60.0


def _window():
    return health_selectors.health_window(key="24h", now=NOW)


def test_reaper_actions_per_hour_by_reason(history, read):
    reaper = read()["reaper_actions"]
    assert set(reaper) == {
        "idle", "plan_window", "stale", "preempted", "orphan", "vanished",
        "start_timeout",
    }  # fmt: skip
    assert reaper["idle"][bucket(13)] == 1 and sum(reaper["idle"]) == 1
    assert reaper["orphan"][bucket(14)] == 1 and sum(reaper["orphan"]) == 1
    assert reaper["vanished"][bucket(14)] == 1 and sum(reaper["vanished"]) == 1
    others = ("plan_window", "stale", "preempted", "start_timeout")
    assert not any(sum(reaper[r]) for r in others)


def test_workers_by_status_equal_the_status_of_each_worker_then(history, read):
    data = read()["workers_by_status"]
    points = [datetime.fromisoformat(p) for p in data["at"]]
    assert points[0] == at("2026-03-09T15:00:00")
    assert points[-2] == at("14:00:00") and points[-1] == NOW
    log = history["history"]
    for i, point in enumerate(points):
        moment = point + timedelta(microseconds=1) if point == NOW else point
        got = {status: data[status][i] for status in log.status_at(moment)}
        assert got == log.status_at(moment), point
    assert data["starting"][-1] == 1  # w10, born 14:25
    assert data["ready"][0] == 1 and data["stopping"][0] == 1  # w7 and w11


def test_workers_by_status_is_exact_through_random_histories(default_class, read):
    """Random lifecycles through the real transition service, hand-counted
    at every point of the 24-hour window."""
    rng = random.Random(13)
    log = History()
    span = (NOW - at("2026-03-09T10:00:00")).total_seconds()
    for _ in range(40):
        when = at("2026-03-09T10:00:00") + timedelta(seconds=rng.uniform(0, span))
        worker = log.born(when)
        status = states.STARTING
        while True:
            choices = sorted(states.TRANSITIONS[status])
            if not choices or rng.random() < 0.25:
                break
            when += timedelta(seconds=rng.uniform(1, 4 * 3600))
            if when >= NOW:
                break
            status = rng.choice(choices)
            log.move(worker, status, when)
    data = read()["workers_by_status"]
    for i, point in enumerate(datetime.fromisoformat(p) for p in data["at"]):
        moment = point + timedelta(microseconds=1) if point == NOW else point
        expected = log.status_at(moment)
        assert {s: data[s][i] for s in expected} == expected, point


def test_days_are_cut_at_local_midnight_across_a_daylight_saving_change(
    personas, settings, default_class
):
    """Berlin moves to summer time on 2026-03-29: that day has 23 hours."""
    settings.TIME_ZONE = "Europe/Berlin"
    now = datetime(2026, 3, 31, 10, 0, tzinfo=UTC)
    h = History()
    for born, ready in [
        ("2026-03-29T21:59:00", "2026-03-29T21:59:59"),  # 23:59:59 CEST, Mar 29
        ("2026-03-29T22:00:00", "2026-03-29T22:00:30"),  # 00:00:30 CEST, Mar 30
        ("2026-03-24T22:59:00", "2026-03-24T22:59:59"),  # Mar 24, outside
        ("2026-03-24T23:00:00", "2026-03-24T23:00:10"),  # 00:00:10 CET, Mar 25
    ]:
        h.move(h.born(at(born)), states.READY, at(ready))
    client = viewer_client(personas.operator)
    with time_machine.travel(now, tick=False):
        data = client.get(DATA, {"range": "7d"}).json()
    assert data["bucket"] == "day" and data["time_zone"] == "Europe/Berlin"
    assert data["buckets"][0] == "2026-03-25T00:00:00+01:00"
    assert data["buckets"][4] == "2026-03-29T00:00:00+01:00"
    assert data["buckets"][5] == "2026-03-30T00:00:00+02:00"
    assert data["starts"]["ready"] == [1, 0, 0, 0, 1, 1, 0]


def test_gpu_units_in_use_against_each_projects_quota(default_class, read):
    full = ProjectFactory(slug="ml-team", gpu_quota=Decimal("2"))
    ProjectFactory(slug="vision", gpu_quota=Decimal("4"))
    ProjectFactory(slug="no-gpus", gpu_quota=Decimal("0"))
    for units, status in [("1.5", "ready"), ("0.5", "busy"), ("1", "stopped")]:
        WorkerFactory(
            workspace__project=full, status=status, gpu_units=Decimal(units),
            gpu_model="RTX 5090",
        )  # fmt: skip
    assert read()["gpu_units"] == [
        {"project": "ml-team", "in_use": 2.0, "quota": 2.0},
        {"project": "vision", "in_use": 0.0, "quota": 4.0},
    ]


def test_the_real_services_show_up_in_the_charts(fleet, default_class, personas):
    """Start, a failed start, an idle reap: through the real services."""
    from tests.factories import WorkspaceFactory

    ready = start(WorkspaceFactory(), fleet)
    fleet.backend.fail("launch", "error", "no capacity")
    failed = start(WorkspaceFactory(), fleet)
    fleet.clock.shift(timedelta(minutes=61))
    with committed():
        services.workers_reap_idle()
    fleet.tasks.run_all()
    assert failed.status == states.FAILED
    assert Worker.objects.get(id=ready.id).status == states.STOPPED
    data = viewer_client(personas.operator).get(DATA).json()
    assert sum(data["starts"]["ready"]) == 1 and sum(data["starts"]["failed"]) == 1
    assert sum(data["reaper_actions"]["idle"]) == 1
    took = (ready.ready_at - ready.created_at).total_seconds()
    p50 = [v for v in data["start_to_ready_seconds"]["p50"] if v is not None]
    assert p50 == [pytest.approx(took, abs=0.1)]
    status_now = {s: data["workers_by_status"][s][-1] for s in ("ready", "starting")}
    assert status_now == {"ready": 0, "starting": 0}


# --- the page -------------------------------------------------------------------------


def test_the_page_draws_every_chart_and_links_back(history, personas):
    client = viewer_client(personas.operator)
    with time_machine.travel(NOW, tick=False):
        html = client.get(HEALTH).content.decode()
    for chart in ("starts", "duration", "statuses", "reaper", "gpu"):
        assert f'id="chart-{chart}"' in html
    assert html.count("<svg") == 5
    assert "0 of 2" in html  # the factories' projects have 2 GPUs of quota
    assert "Hour starting (UTC)" in html and "Starts ended" in html
    assert "2026-03-10 09:00–10:00 UTC: 2 Ready" in html  # a bar's title
    assert "2026-03-09 15:00 UTC – 2026-03-10 14:30 UTC" in html
    assert 'href="/admin/notebook-workers/"' in html
    console = client.get("/admin/notebook-workers/").content.decode()
    assert 'href="/admin/notebook-workers/health/"' in console


def test_an_empty_fleet_says_so(personas):
    client = viewer_client(personas.operator)
    html = client.get(HEALTH).content.decode()
    assert "No starts in the last 24 hours." in html
    assert "No reaper actions in the last 24 hours." in html
    assert "<svg" not in html
    html = client.get(HEALTH, {"range": "7d"}).content.decode()
    assert "No starts in the last 7 days." in html
    assert 'aria-current="page">Last 7 days</a>' in html


def test_htmx_gets_the_body_only(personas):
    client = viewer_client(personas.operator)
    response = client.get(HEALTH, {"range": "7d"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="health-body">')
    assert "<html" not in html


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("range=30d", "Unknown range “30d”: use 24h or 7d."),
        ("range=24h&range=7d", "'range' was given 2 times; give it once."),
        ("range=<b>", "Unknown range “<b>”: use 24h or 7d."),
    ],
)
def test_a_bad_range_answers_400_with_the_reason(personas, query, reason):
    client = viewer_client(personas.operator)
    page = client.get(f"{HEALTH}?{query}")
    data = client.get(f"{DATA}?{query}")
    assert page.status_code == 400 and data.status_code == 400
    assert data.json() == {"errors": {"range": [reason]}}
    assert escape(reason) in page.content.decode()
    assert "<svg" not in page.content.decode()


def test_an_empty_range_means_the_last_24_hours(personas):
    response = viewer_client(personas.operator).get(DATA, {"range": ""})
    assert response.json()["range"] == "24h"


# --- who may see it ------------------------------------------------------------------------


@pytest.mark.parametrize("path", [HEALTH, DATA])
def test_anonymous_users_are_sent_to_log_in(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=")


@pytest.mark.parametrize(
    ("who", "code"),
    [("alice", 403), ("clerk", 403), ("manager", 403), ("operator", 200),
     ("admin", 200)],
)  # fmt: skip
@pytest.mark.parametrize("path", [HEALTH, DATA])
def test_it_needs_staff_with_the_view_permission(personas, who, code, path):
    user = getattr(personas, who, None) or UserFactory(username=who, is_staff=True)
    response = viewer_client(user).get(path)
    assert response.status_code == code
    if code == 403:
        assert "Can view worker" in response.content.decode()


def test_the_selector_gives_non_viewers_nothing(personas):
    assert fleet_health(user=personas.alice, key="24h") is None
    assert fleet_health(user=personas.operator, key="24h") is not None


# --- cost --------------------------------------------------------------------------------


def _grow(n: int, hours: float) -> None:
    """``n`` workers started over the last ``hours``, most ready, some
    failed and some reaped, written in bulk with their events."""
    owner = UserFactory()
    now = NOW
    workers, events = [], []
    for i in range(n):
        born = now - timedelta(hours=hours * (i + 1) / (n + 1))
        end = [states.READY, states.FAILED, states.STOPPING][i % 3]
        workers.append(
            Worker(owner=owner, backend="local", status=end, created_at=born,
                   status_changed_at=born + timedelta(seconds=40))
        )  # fmt: skip
        label = "reap_idle" if end == states.STOPPING else ""
        events.append(
            WorkerEvent(worker=workers[-1], at=born + timedelta(seconds=40),
                        kind=EventKind.TRANSITION, actor_type=Actor.SYSTEM,
                        actor_label=label, from_status=states.STARTING, to_status=end)
        )  # fmt: skip
    Worker.objects.bulk_create(workers)
    WorkerEvent.objects.bulk_create(events)


def _queries(client: Client, path: str) -> int:
    with time_machine.travel(NOW, tick=False):
        client.get(path)  # the session and permission caches warm up
        with CaptureQueriesContext(connection) as queries:
            assert client.get(path).status_code == 200
    return len(queries)


@pytest.mark.parametrize("path", [f"{HEALTH}?range=24h", f"{DATA}?range=7d"])
def test_the_query_count_does_not_grow_with_the_fleet(personas, path):
    client = viewer_client(personas.operator)
    _grow(10, 20)
    small = _queries(client, path)
    _grow(490, 150)
    assert Worker.objects.count() == 500
    assert _queries(client, path) == small
    assert small <= 12
