"""The console page's two queries, the rows and the summary counts, as SQL
written once and filled from the validated filter form; ``fetch`` sends a
page's queries together.

Why not the ORM here: the page asks the same few shapes of query on every
view and refresh, and building and compiling them through querysets (a
filter set, annotations, a ``UNION``) cost the web process more than
PostgreSQL took to run them: about 3 ms of a 20 ms page at 1k workers
(bench/console_vs_jupyterhub.py). What the filters mean stays in
``console.filters`` (the form, and ``statuses`` for the status rule);
``tests/integration/test_console_sql.py`` checks every filter combination
here against that filter set's queryset, and the stale count against
``workers.models.stale_q``.

Names are joined to the page's rows after their LIMIT (a subquery): a join
over the whole table cost more to plan than to run (1.3 of 2 ms at 1k
workers), and a correlated subquery per name ran 300 index or table scans
for 100 rows (0.5 ms of PostgreSQL's time, half the query).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

import psycopg
from django.conf import settings
from django.db import connection
from django.utils.dateparse import parse_datetime

from console.forms import Cursor
from console.rows import NAME_FIELDS, ROW_FIELDS, TIME_FIELDS, ConsoleRow
from workers import states
from workers.models import Worker

PLAIN_FIELDS = tuple(f for f in ROW_FIELDS if f not in TIME_FIELDS)
ROW_NAMES = PLAIN_FIELDS + NAME_FIELDS + TIME_FIELDS
# The summary's stale count travels among the status counts under no status.
STALE_KEY = ""


@dataclass(frozen=True)
class Conditions:
    """A WHERE clause over ``workers_worker`` (aliased ``w``) and its
    parameters, from the filter form's cleaned values."""

    sql: str
    params: tuple
    statuses: frozenset[str]  # those the clause admits

    @classmethod
    def of(cls, *, statuses: frozenset[str], options: dict) -> Conditions:
        parts, params = [], []
        if statuses != frozenset(states.STATUSES):
            ordered = sorted(statuses)
            parts.append(f"w.status IN ({', '.join(['%s'] * len(ordered))})")
            params.extend(ordered)
        for option, column in (
            ("backend", "backend"),
            ("project", "project_id"),
            ("user", "owner_id"),
        ):
            if options.get(option):
                parts.append(f"w.{column} = %s")
                params.append(_db_value(column, options[option]))
        return cls(" AND ".join(parts) or "1 = 1", tuple(params), statuses)


@dataclass(frozen=True)
class Query:
    """A statement, its parameters and what makes its result of the rows."""

    sql: str
    params: list
    read: Callable[[list[tuple]], object]


def fetch(*queries: Query) -> list:
    """Each query's result, in order. On PostgreSQL they are sent together
    in one pipeline: the page waits for the server once, not once per
    query (0.2 ms of a 9 ms page for three, bench/console_vs_jupyterhub.py).
    """
    cursors = [connection.cursor() for _ in queries]
    try:
        with connection.wrap_database_errors, _together():
            for cursor, query in zip(cursors, queries, strict=True):
                cursor.execute(query.sql, query.params)
        return [
            query.read(cursor.fetchall())
            for cursor, query in zip(cursors, queries, strict=True)
        ]
    finally:
        for cursor in cursors:
            cursor.close()


def _together():
    """psycopg's pipeline where the connection has one: its statements
    travel together and leaving it waits for all their results."""
    if connection.vendor == "postgresql" and psycopg.Pipeline.is_supported():
        return connection.connection.pipeline()
    return nullcontext()


def rows_query(conditions: Conditions, before: Cursor | None, limit: int) -> Query:
    """Up to ``limit`` rows newest first on (created_at, id) after
    ``before``, as ``ConsoleRow``s."""
    where, params = conditions.sql, list(conditions.params)
    if before is not None:
        # The redundant ``created_at <=`` bounds the index range, so a deep
        # page starts at its cursor instead of filtering every newer row.
        where += (
            " AND w.created_at <= %s"
            " AND (w.created_at < %s OR (w.created_at = %s AND w.id < %s))"
        )
        stamp = _db_value("created_at", before.created_at)
        params += [stamp, stamp, stamp, _db_value("id", before.id)]
    inner, outer = _select_lists(connection.vendor, _iso_date_style())
    sql = (
        f"SELECT {outer} FROM (SELECT {inner} FROM workers_worker w WHERE {where}"
        f" ORDER BY w.created_at DESC, w.id DESC LIMIT %s) p {_name_joins()}"
        " ORDER BY p.created_at DESC, p.id DESC"
    )
    read = _reader()
    return Query(
        sql,
        [*params, limit],
        lambda fetched: [
            ConsoleRow.from_values(ROW_NAMES, read(values)) for values in fetched
        ],
    )


def status_counts_query(
    conditions: Conditions, *, kept: bool, backend: str | None, now: datetime
) -> Query:
    """{status: count} of the workers the conditions match, and the stale
    count under ``STALE_KEY``, in one round trip.

    ``kept``: the counts come from ``workers_workerstatuscount`` (kept by
    triggers; the caller decides when they answer) instead of counting rows.
    """
    if kept:
        statuses = sorted(conditions.statuses)
        counts = (
            "SELECT c.status, SUM(c.n) FROM workers_workerstatuscount c"
            f" WHERE c.status IN ({', '.join(['%s'] * len(statuses))})"
            + (" AND c.backend = %s" if backend else "")
            + " GROUP BY c.status"
        )
        params = [*statuses, *([backend] if backend else [])]
    else:
        counts = (
            "SELECT w.status, COUNT(*) FROM workers_worker w"
            f" WHERE {conditions.sql} GROUP BY w.status"
        )
        params = list(conditions.params)
    starting_before = now - timedelta(
        seconds=settings.NOTEBOOK_RUNTIME_STALE_STARTING_SECONDS
    )
    busy_before = now - timedelta(seconds=settings.NOTEBOOK_RUNTIME_STALE_BUSY_SECONDS)
    stale = (
        "SELECT %s, COUNT(*) FROM workers_worker w"
        f" WHERE {conditions.sql} AND ("
        "(w.status = %s AND w.status_changed_at < %s)"
        " OR (w.status = %s AND w.status_changed_at < %s"
        " AND (w.last_activity_at IS NULL OR w.last_activity_at < %s)))"
    )
    busy = _db_value("created_at", busy_before)
    params += [
        STALE_KEY,
        *conditions.params,
        states.STARTING,
        _db_value("created_at", starting_before),
        states.BUSY,
        busy,
        busy,
    ]
    return Query(
        f"{counts} UNION ALL {stale}",
        params,
        lambda fetched: {status: int(n) for status, n in fetched},
    )


@cache
def _select_lists(vendor: str, iso_date_style: bool) -> tuple[str, str]:
    """The page's columns: those read from ``workers_worker`` (``w``) in the
    subquery, and the outer list over it (``p``) with the joined names, in
    ``ROW_NAMES`` order."""
    if vendor == "postgresql":
        # As ISO 8601 text, parsed by ``datetime.fromisoformat`` (in C):
        # Django's timestamp loader runs Python per value (about 5 us, 500 a
        # page), and epoch integers cost more to turn into datetimes. A
        # plain cast is ISO under the default DateStyle; JSON always is, at
        # 0.13 ms more a page.
        text = "w.{}::text" if iso_date_style else "(to_json(w.{}) #>> '{{}}')"
        times = [f"{text.format(name)} AS {name}_text" for name in TIME_FIELDS]
    else:
        times = [f"w.{name} AS {name}_text" for name in TIME_FIELDS]
    # ``created_at`` also as stored, for the outer ORDER BY.
    inner = [f"w.{name}" for name in (*PLAIN_FIELDS, "created_at")]
    inner += [f"w.{named.key}" for named in _named()]
    outer = [f"p.{name}" for name in PLAIN_FIELDS]
    outer += [f"{named.alias}.{named.column}" for named in _named()]
    outer += [f"p.{name}_text" for name in TIME_FIELDS]
    return ", ".join([*inner, *times]), ", ".join(outer)


@dataclass(frozen=True)
class _Named:
    """A related row whose name the page prints: ``alias``'s ``column``,
    found by the worker's ``key`` column."""

    alias: str
    key: str
    table: str
    pk: str
    column: str


@cache
def _named() -> tuple[_Named, ...]:
    """The owner's, project's and class's names, in ``NAME_FIELDS`` order."""
    named = []
    for alias, relation, field in (
        ("o", "owner", None),  # the user model's USERNAME_FIELD
        ("pr", "project", "name"),
        ("rc", "resource_class", "display_name"),
    ):
        key = Worker._meta.get_field(relation)
        model = key.related_model
        column = model._meta.get_field(field or model.USERNAME_FIELD).column
        named.append(
            _Named(
                alias, key.column, model._meta.db_table, model._meta.pk.column, column
            )
        )
    return tuple(named)


@cache
def _name_joins() -> str:
    """LEFT JOINs of the page's rows (``p``) to their named rows (a
    primary key each: one row at most)."""
    return " ".join(
        f"LEFT JOIN {n.table} {n.alias} ON {n.alias}.{n.pk} = p.{n.key}"
        for n in _named()
    )


def _iso_date_style() -> bool:
    """Whether the session's DateStyle writes timestamps as ISO 8601."""
    if connection.vendor != "postgresql":
        return False
    connection.ensure_connection()
    style = connection.connection.info.parameter_status("DateStyle") or ""
    return style.startswith("ISO")


def _reader():
    """Turns a fetched row into ``ROW_NAMES`` order with Python values."""
    plain = len(PLAIN_FIELDS) + len(NAME_FIELDS)
    uuids = [ROW_NAMES.index(name) for name in ("id", "workspace_id")]
    if connection.vendor == "postgresql":
        moment = _moment_of_iso
        convert_uuid = None  # psycopg returns uuid.UUID
    else:
        moment = _moment_of_text
        convert_uuid = _uuid_of_text

    def read(values: tuple) -> tuple:
        values = (*values[:plain], *[moment(v) for v in values[plain:]])
        if convert_uuid is None:
            return values
        values = list(values)
        for index in uuids:
            values[index] = convert_uuid(values[index])
        return tuple(values)

    return read


def _moment_of_iso(text: str | None) -> datetime | None:
    """PostgreSQL's ISO 8601 text of a timestamptz:
    "2026-11-27 10:20:37.603125+00" or "2026-11-27T10:20:37.603125+00:00"."""
    return None if text is None else datetime.fromisoformat(text)


def _moment_of_text(value: datetime | str | None) -> datetime | None:
    """SQLite's stored UTC time: Django's sqlite3 converters give a naive
    datetime for a declared datetime column, a subquery gives the text."""
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else parse_datetime(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _uuid_of_text(text: str | None) -> uuid.UUID | None:
    return None if text is None else uuid.UUID(text)


def _db_value(column: str, value):
    """``value`` as the database stores ``workers_worker.<column>``."""
    field = next(f for f in Worker._meta.concrete_fields if f.column == column)
    return field.get_db_prep_value(value, connection, prepared=False)
