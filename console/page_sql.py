"""The console page's two queries, the rows and the summary counts, as SQL
written once and filled from the validated filter form.

Why not the ORM here: the page asks the same few shapes of query on every
view and refresh, and building and compiling them through querysets (a
filter set, annotations, a ``UNION``) cost the web process more than
PostgreSQL took to run them: about 3 ms of a 20 ms page at 1k workers
(bench/console_vs_jupyterhub.py). What the filters mean stays in
``console.filters`` (the form, and ``statuses`` for the status rule);
``tests/integration/test_console_sql.py`` checks every filter combination
here against that filter set's queryset, and the stale count against
``workers.models.stale_q``.

Names are correlated subqueries, not joins: PostgreSQL runs them for the
page's rows only, after the LIMIT, and planning a four-way join cost more
than running it (1.3 of 2 ms at 1k workers).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

from django.conf import settings
from django.db import connection
from django.utils.dateparse import parse_datetime

from console.forms import Cursor
from console.rows import NAME_FIELDS, ROW_FIELDS, TIME_FIELDS, ConsoleRow
from workers import states
from workers.models import Worker

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
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


def rows(conditions: Conditions, before: Cursor | None, limit: int) -> list:
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
    sql = (
        f"SELECT {_select_list(connection.vendor)} FROM workers_worker w WHERE {where}"
        " ORDER BY w.created_at DESC, w.id DESC LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, limit])
        fetched = cursor.fetchall()
    read = _reader()
    return [ConsoleRow.from_values(ROW_NAMES, read(values)) for values in fetched]


def status_counts(
    conditions: Conditions, *, kept: bool, backend: str | None, now: datetime
) -> dict[str, int]:
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
    with connection.cursor() as cursor:
        cursor.execute(f"{counts} UNION ALL {stale}", params)
        return {status: int(n) for status, n in cursor.fetchall()}


@cache
def _select_list(vendor: str) -> str:
    owner = Worker._meta.get_field("owner").related_model
    names = (
        _name_of("owner", owner.USERNAME_FIELD),
        _name_of("project", "name"),
        _name_of("resource_class", "display_name"),
    )
    if vendor == "postgresql":
        # Integers, parsed in C: Django parses each timestamp's text in
        # Python (about 5 us each, 500 a page).
        times = [
            f"(EXTRACT(EPOCH FROM w.{name}) * 1000000)::bigint" for name in TIME_FIELDS
        ]
    else:
        times = [f"w.{name}" for name in TIME_FIELDS]
    return ", ".join([*(f"w.{name}" for name in PLAIN_FIELDS), *names, *times])


def _name_of(relation: str, field: str) -> str:
    """A correlated subquery: the related row's ``field`` (a primary key
    lookup, one row at most)."""
    key = Worker._meta.get_field(relation)
    model = key.related_model
    column = model._meta.get_field(field).column
    return (
        f"(SELECT n.{column} FROM {model._meta.db_table} n"
        f" WHERE n.{model._meta.pk.column} = w.{key.column})"
    )


def _reader():
    """Turns a fetched row into ``ROW_NAMES`` order with Python values."""
    plain = len(PLAIN_FIELDS) + len(NAME_FIELDS)
    uuids = [ROW_NAMES.index(name) for name in ("id", "workspace_id")]
    if connection.vendor == "postgresql":
        moment = _moment_of_micros
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


def _moment_of_micros(micros: int | None) -> datetime | None:
    return None if micros is None else EPOCH + timedelta(microseconds=micros)


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
