"""Console at scale: kept status counts equal COUNT(*), constant queries, gzip.

The triggers of workers migration 0004 keep it; these tests write workers
every way the code does (factories, bulk_create, the transition service,
deletes) and compare with a real count, sequentially (Hypothesis) and from
concurrent threads with real commits.
"""

import random
import threading
from datetime import timedelta

import factory
import pytest
from django.db import close_old_connections, connection
from django.db.models import Count
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import (
    ProjectFactory,
    UserFactory,
    WorkerFactory,
    WorkspaceFactory,
)
from tests.integration.console_support import CONSOLE
from workers import states
from workers.models import Worker, WorkerStatusCount
from workers.services import transitions
from workers.services.transitions import worker_transition

pytestmark = pytest.mark.needs_postgres


def kept() -> dict:
    rows = WorkerStatusCount.objects.exclude(n=0)
    return {(r.status, r.backend): r.n for r in rows}


def counted() -> dict:
    rows = Worker.objects.values_list("status", "backend").annotate(n=Count("id"))
    return {(status, backend): n for status, backend, n in rows}


def next_status(status: str, rng: random.Random) -> str | None:
    allowed = sorted(states.TRANSITIONS[status])
    return rng.choice(allowed) if allowed else None


STEP = st.one_of(
    st.tuples(
        st.just("create"),
        st.sampled_from(states.STATUSES),
        st.sampled_from(states.BACKENDS),
        st.integers(1, 5),
    ),
    st.tuples(st.just("move"), st.integers(0, 10_000)),
    st.tuples(st.just("delete"), st.integers(0, 10_000)),
)


@pytest.mark.django_db
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=st.lists(STEP, max_size=12), seed=st.integers(0, 2**16))
def test_random_creates_moves_and_deletes_keep_the_counts_exact(
    default_class, steps, seed
):
    rng = random.Random(seed)
    owner = WorkerFactory().owner
    for step in steps:
        ids = list(Worker.objects.values_list("id", "status"))
        if step[0] == "create":
            _, status, backend, how_many = step
            Worker.objects.bulk_create(
                Worker(owner=owner, name="h", status=status, backend=backend)
                for _ in range(how_many)
            )
        elif ids and step[0] == "move":
            worker_id, status = ids[step[1] % len(ids)]
            to = next_status(status, rng)
            if to:
                assert worker_transition(
                    worker_id=worker_id, expected=status, to=to, actor_type="system"
                )
        elif ids:
            Worker.objects.filter(id=ids[step[1] % len(ids)][0]).delete()
        assert kept() == counted()


@pytest.mark.django_db(transaction=True)
def test_concurrent_transitions_and_launches_keep_the_counts_exact(
    default_class, monkeypatch
):
    """Eight threads, each with its own connection and real commits, race
    for the same 40 workers (conditional UPDATEs: some lose, as in
    production) while creating more; no deadlock, no lost increment."""
    monkeypatch.setattr(transitions, "publish_worker_changed", lambda *a: None)
    template = WorkerFactory(status="ready", backend="docker")
    WorkerFactory.create_batch(
        39, status="starting", backend="kubernetes", workspace=template.workspace
    )
    errors: list[BaseException] = []

    def run(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(40):
                _one_step(rng, template)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=run, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert kept() == counted()
    assert sum(counted().values()) > 40  # the launches happened too


def _one_step(rng: random.Random, template: Worker) -> None:
    if rng.random() < 0.2:
        Worker.objects.create(
            owner_id=template.owner_id,
            name="c",
            backend=rng.choice(states.BACKENDS),
            status=states.STARTING,
        )
        return
    worker_id, status = rng.choice(list(Worker.objects.values_list("id", "status")))
    to = next_status(status, rng)
    if to:  # may lose the race: the conditional UPDATE then moves nothing
        worker_transition(
            worker_id=worker_id, expected=status, to=to, actor_type="system"
        )


@pytest.mark.django_db
def test_the_summary_counts_no_worker_rows_but_the_stale_ones(client, admin_user):
    """Status totals come from the kept counts, with and without terminal
    workers; the only query on workers_worker besides the page of rows and
    the classes' usage is the stale count (a bounded index range)."""
    client.force_login(admin_user)
    WorkerFactory.create_batch(3, status="stopped")
    for query in ("", "?terminal=on", "?backend=local&status=failed"):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(f"{CONSOLE}{query}").status_code == 200
        sql = [q["sql"] for q in queries.captured_queries]
        counts = [s for s in sql if 'COUNT("workers_worker"' in s or "COUNT(*)" in s]
        assert any("workers_workerstatuscount" in s for s in sql)
        assert len(counts) == 2  # the stale rows and the classes' active usage
        assert all("status_changed_at" in s or "resource_class_id" in s for s in counts)


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["", "?terminal=on", "?backend=docker"])
def test_the_page_costs_the_same_queries_at_10_and_200_workers(
    client, admin_user, default_class, query
):
    client.force_login(admin_user)
    template = WorkerFactory(status="ready", backend="docker")

    def grow_to(n: int) -> int:
        have = Worker.objects.count()
        Worker.objects.bulk_create(
            Worker(
                owner_id=template.owner_id,
                workspace_id=template.workspace_id,
                project_id=template.project_id,
                resource_class=default_class,
                name=f"w{i}",
                backend=random.choice(states.BACKENDS),
                status=random.choice(states.STATUSES),
                next_action="idle stop" if i % 3 else "",
            )
            for i in range(n - have)
        )
        with CaptureQueriesContext(connection) as queries:
            assert client.get(f"{CONSOLE}{query}").status_code == 200
        return len(queries)

    assert grow_to(10) == grow_to(200) <= 5


@pytest.mark.django_db
def test_the_page_is_compressed_for_clients_that_accept_it(client, admin_user):
    client.force_login(admin_user)
    WorkerFactory.create_batch(3)
    plain = client.get(CONSOLE)
    packed = client.get(CONSOLE, HTTP_ACCEPT_ENCODING="gzip")
    assert "Content-Encoding" not in plain
    assert packed["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in packed["Vary"]
    assert len(packed.content) < len(plain.content) / 3


@pytest.mark.django_db
def test_a_hundred_rows_with_every_button_stay_under_80_kb(client, admin_user):
    """The heaviest page of 100 rows: ready workers, probed and due an idle
    stop, seen by an admin who may stop them and use Access server; names
    as long as ``seed_load``'s at 100k workers."""
    client.force_login(admin_user)
    owner = UserFactory(username="load-user-99999")
    project = ProjectFactory(name="Load project 123", personal_owner=owner)
    now = timezone.now()
    WorkerFactory.create_batch(
        120,
        workspace=factory.SubFactory(WorkspaceFactory, project=project),
        name=factory.Sequence(lambda i: f"nb-{90000 + i}"),
        backend="docker",
        status="ready",
        health="ready",
        health_checked_at=now - timedelta(minutes=1),
        last_activity_at=now - timedelta(minutes=22),
        next_action="idle stop",
        next_action_at=now + timedelta(minutes=47),
    )
    response = client.get(f"{CONSOLE}?status=ready&backend=docker")
    html = response.content.decode()
    assert html.count("<tr id=") == 100
    assert html.count(">Stop</button>") == html.count(">Access server</a>") == 100
    assert len(response.content) <= 80_000
