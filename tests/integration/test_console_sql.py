"""``console.page_sql`` answers what the filter set's queryset answers.

The console's rows and summary are SQL written once (see that module for
why); the meaning of each filter stays in ``console.filters``. Every
combination of the filters here is run both ways on the same fleet: the
same rows in the same order, page after page, and the same counts, kept or
counted, with the stale count equal to ``workers.models.stale_q``'s.
"""

import functools
import itertools

import pytest
from django.db import connection
from django.db.models import Count
from django.http import QueryDict
from django.utils import timezone

from console import page_sql
from console.filters import WorkerConsoleFilter
from console.forms import Cursor
from tests.factories import WorkerFactory
from tests.integration.console_support import make_fleet
from workers.models import Worker, counts_kept, stale_q

# Both databases: the rows query reads times and ids differently on each.
pytestmark = pytest.mark.django_db

STATUS_CHOICES = ([], ["ready"], ["failed", "stopped"], ["starting", "busy", "ready"])
BACKENDS = ("", "docker", "local", "kubernetes")


@pytest.fixture
def fleet(alice, bob, default_class):
    fleet = make_fleet(alice, bob)
    # Two workers created in the same microsecond: the id breaks the tie.
    twin = fleet.workers[0].created_at
    for status in ("ready", "failed"):
        worker = WorkerFactory(status=status, backend="docker")
        Worker.objects.filter(pk=worker.pk).update(created_at=twin)
    return fleet


def queries(fleet, alice, bob):
    projects = ("", str(fleet.alice_project.pk), str(fleet.bob_project.pk))
    users = ("", str(alice.pk), str(bob.pk))
    for status, backend, project, user, terminal in itertools.product(
        STATUS_CHOICES, BACKENDS, projects, users, ("", "on")
    ):
        data = QueryDict(mutable=True)
        data.setlist("status", status)
        for name, value in (
            ("backend", backend),
            ("project", project),
            ("user", user),
            ("terminal", terminal),
        ):
            if value:
                data[name] = value
        yield data


def filterset(data) -> WorkerConsoleFilter:
    bound = WorkerConsoleFilter(data, queryset=Worker.objects.all())
    assert bound.is_valid(), bound.form.errors
    return bound


def conditions_of(bound: WorkerConsoleFilter) -> page_sql.Conditions:
    return page_sql.Conditions.of(
        statuses=bound.statuses, options=bound.form.cleaned_data
    )


def fetched(query: page_sql.Query):
    return page_sql.fetch(query)[0]


def test_every_filter_combination_lists_the_same_rows_page_by_page(fleet, alice, bob):
    compared = 0
    for data in queries(fleet, alice, bob):
        bound = filterset(data)
        expected = list(
            bound.qs.order_by("-created_at", "-id").values_list("id", flat=True)
        )
        conditions = conditions_of(bound)
        listed, before = [], None
        while True:  # pages of two, through the cursor
            rows = fetched(page_sql.rows_query(conditions, before, 2))
            listed += [row.id for row in rows]
            if len(rows) < 2:
                break
            before = Cursor(created_at=rows[-1].created_at, id=rows[-1].id)
        assert listed == expected, data.urlencode()
        compared += bool(expected)
    assert compared > 100  # most combinations match some workers


def test_rows_carry_the_names_and_exact_times(fleet):
    worker = fleet.workers[0]
    bound = filterset(QueryDict("terminal=on"))
    query = page_sql.rows_query(conditions_of(bound), None, 100)
    rows = {row.id: row for row in fetched(query)}
    row = rows[worker.pk]
    assert row.owner_name == worker.owner.username
    assert row.project_name == worker.project.name
    assert row.class_name == worker.resource_class.display_name
    assert row.created_at == worker.created_at
    assert row.status_changed_at == worker.status_changed_at
    assert row.workspace_id == worker.workspace_id
    assert row.next_action_at is None


@pytest.mark.parametrize("date_style", ["ISO, MDY", "German", "SQL, DMY", "Postgres"])
def test_rows_times_are_exact_whatever_the_sessions_date_style(fleet, date_style):
    expected = {w.pk: (w.created_at, w.status_changed_at) for w in fleet.workers}
    query_of = functools.partial(
        page_sql.rows_query, conditions_of(filterset(QueryDict("terminal=on")))
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SET DateStyle = '{date_style}'")
    try:
        rows = fetched(query_of(None, 100))
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET DateStyle")
    got = {row.id: (row.created_at, row.status_changed_at) for row in rows}
    assert {k: got[k] for k in expected} == expected


def test_every_filter_combination_counts_the_same(fleet, alice, bob):
    now = timezone.now()
    stale_seen = 0
    for data in queries(fleet, alice, bob):
        bound = filterset(data)
        options = bound.form.cleaned_data
        expected = dict(
            bound.qs.order_by().values_list("status").annotate(n=Count("id"))
        )
        stale = bound.qs.filter(stale_q(now)).count()
        stale_seen += stale
        conditions = conditions_of(bound)
        ways = [False]
        if counts_kept(connection) and not (options["project"] or options["user"]):
            ways.append(True)
        for kept in ways:
            counts = fetched(
                page_sql.status_counts_query(
                    conditions, kept=kept, backend=options["backend"] or None, now=now
                )
            )
            assert counts.pop(page_sql.STALE_KEY) == stale, data.urlencode()
            got = {status: n for status, n in counts.items() if n}
            assert got == expected, (data.urlencode(), kept)
    assert stale_seen  # the fleet's two stale workers were counted somewhere


def test_queries_sent_together_each_get_their_own_result(fleet):
    conditions = conditions_of(filterset(QueryDict("terminal=on")))
    now = timezone.now()
    rows = page_sql.rows_query(conditions, None, 100)
    counts = page_sql.status_counts_query(conditions, kept=False, backend=None, now=now)
    one = page_sql.Query("SELECT 1", [], list)
    together = page_sql.fetch(counts, rows, one)
    assert together[0] == fetched(counts)
    assert [row.id for row in together[1]] == [row.id for row in fetched(rows)]
    assert together[2] == [(1,)]
    counted = dict(together[0])
    counted.pop(page_sql.STALE_KEY)
    assert sum(counted.values()) == Worker.objects.count()


@pytest.mark.django_db(transaction=True)
def test_a_failing_query_among_them_raises_djangos_error_and_the_next_works(fleet):
    from django.db import DatabaseError

    good = page_sql.Query("SELECT 1", [], list)
    bad = page_sql.Query("SELECT no_such_column FROM workers_worker", [], list)
    with pytest.raises(DatabaseError, match="no_such_column"):
        page_sql.fetch(good, bad, good)
    assert page_sql.fetch(good) == [[(1,)]]
