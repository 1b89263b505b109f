"""Reads for Admin → Notebook Workers → Fleet health. Nothing here writes.

Every chart is a fixed number of grouped queries over one time window of
the ``WorkerEvent`` log (indexes ``worker_event_at``, ``…_kind_at``,
``…_actor_at``) whatever the fleet size: starts and their durations (one
query on PostgreSQL, two elsewhere), workers by status (three), reaper
actions (one), GPU units and quotas (two). Their cost follows the events
in the window, not the fleet. All read one snapshot, so the charts agree.

What counts is defined once, in ``ops.event_metrics`` and
``ops.fleet_metrics``, and shared with /metrics: a start ended when its
worker left ``starting`` (to ready, failed, or stopping = cancelled); its
duration runs from the worker's creation; reaper actions by reason are
``reaper_actions``; GPU units are those of allocated workers.

Workers by status over time is rebuilt from the log, exactly: the status
counts now (``WorkerStatusCount``, kept by triggers on PostgreSQL), minus
every transition and creation since a moment, give the counts at that
moment. It relies on the one-status-writer rule: every status change is
one transition event (from, to) written with the change, and every worker
is born ``starting`` (its ``created_at``). A transition without a
from-status (a seed's birth marker) is not a change and is skipped.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta, tzinfo
from decimal import Decimal

from django.db import connection
from django.db.models import Aggregate, Count, F, FloatField, Func, Sum
from django.db.models.functions import Trunc
from django.utils import timezone

from console.selectors import can_view_console
from ops.event_metrics import (
    REAPER_REASONS,
    START_OUTCOMES,
    ended_starts,
    one_snapshot,
    reaper_actions,
)
from ops.fleet_metrics import gpu_units_in_use, project_gpu_quotas
from workers import states
from workers.models import (
    EventKind,
    Worker,
    WorkerEvent,
    WorkerStatusCount,
    counts_kept,
)

# range key → (label, bucket unit, buckets): the last N buckets, the
# newest one being the current, partial one.
RANGES = {
    "24h": ("Last 24 hours", "hour", 24),
    "7d": ("Last 7 days", "day", 7),
}
DEFAULT_RANGE = "24h"
START_KINDS = tuple(START_OUTCOMES.values())  # ready, failed, cancelled
SHOWN_STATUSES = (states.STARTING, states.READY, states.BUSY, states.STOPPING)
GPU_PROJECTS_SHOWN = 20
FULL_TIME = "%Y-%m-%d %H:%M %Z"  # the one format the page shows times in


@dataclass(frozen=True)
class Window:
    """The buckets a range covers, in the display time zone.

    Hours are cut in UTC (an hour is an hour in every zone, also across a
    daylight-saving change); days at local midnight, so a day may last 23
    or 25 hours."""

    key: str
    label: str
    unit: str  # "hour" or "day"
    starts: list[datetime]  # each bucket's start, oldest first
    stop: datetime  # the newest bucket's end
    now: datetime

    @property
    def start(self) -> datetime:
        return self.starts[0]

    @property
    def ends(self) -> list[datetime]:
        return [*self.starts[1:], self.stop]

    @property
    def zone(self) -> str:
        """The display time zone's name ("UTC", "Europe/Berlin"); each time
        shown names its own offset's abbreviation (``FULL_TIME``)."""
        return str(self.now.tzinfo)

    def trunc(self, field_name: str) -> Trunc:
        zone = UTC if self.unit == "hour" else self.now.tzinfo
        return Trunc(field_name, self.unit, tzinfo=zone)


def health_window(*, key: str, now: datetime | None = None) -> Window:
    """The window of range ``key`` (a ``RANGES`` key) ending now."""
    label, unit, count = RANGES[key]
    now = timezone.localtime(now or timezone.now())
    if unit == "hour":
        top = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        starts = [top - timedelta(hours=count - 1 - i) for i in range(count + 1)]
        starts = [timezone.localtime(s) for s in starts]
    else:
        zone, today = now.tzinfo, now.date()
        starts = [
            _midnight(today - timedelta(days=count - 1 - i), zone)
            for i in range(count + 1)
        ]
    return Window(key, label, unit, starts[:-1], starts[-1], now)


def _midnight(day, zone: tzinfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone)


@dataclass(frozen=True)
class GpuUse:
    project: str  # slug; "" = workers without a project
    in_use: Decimal
    quota: Decimal

    @property
    def over(self) -> bool:
        return self.in_use > self.quota


@dataclass
class FleetHealth:
    """Plain numbers for the charts; lists run over ``window.starts``
    except ``statuses``, which run over ``points``."""

    window: Window
    starts: dict[str, list[int]] = field(default_factory=dict)
    ready_p50: list[float | None] = field(default_factory=list)
    ready_p95: list[float | None] = field(default_factory=list)
    points: list[datetime] = field(default_factory=list)
    statuses: dict[str, list[int]] = field(default_factory=dict)
    reaper: dict[str, list[int]] = field(default_factory=dict)
    gpu: list[GpuUse] = field(default_factory=list)
    gpu_more: int = 0  # projects left out of ``gpu``

    def as_json(self) -> dict:
        w = self.window
        return {
            "range": w.key,
            "label": w.label,
            "bucket": w.unit,
            "time_zone": w.zone,
            "generated_at": w.now.isoformat(),
            "buckets": [s.isoformat() for s in w.starts],
            "end": w.stop.isoformat(),
            "starts": self.starts,
            "start_to_ready_seconds": {"p50": self.ready_p50, "p95": self.ready_p95},
            "workers_by_status": {
                "at": [p.isoformat() for p in self.points],
                **self.statuses,
            },
            "reaper_actions": self.reaper,
            "gpu_units": [
                {
                    "project": g.project,
                    "in_use": float(g.in_use),
                    "quota": float(g.quota),
                }
                for g in self.gpu
            ],
            "gpu_projects_not_shown": self.gpu_more,
        }


def fleet_health(*, user, key: str, now: datetime | None = None) -> FleetHealth | None:
    """Every chart's numbers for range ``key``, or None for a user who may
    not view the console. Reads one snapshot."""
    if not can_view_console(user):
        return None
    window = health_window(key=key, now=now)
    health = FleetHealth(window=window)
    with one_snapshot():
        health.starts, health.ready_p50, health.ready_p95 = start_series(window)
        health.points, health.statuses = status_series(window)
        health.reaper = reaper_series(window)
        health.gpu, health.gpu_more = gpu_use()
    return health


def _in_window(window: Window, queryset):
    return queryset.filter(at__gte=window.start, at__lt=window.stop)


def _per_bucket(window: Window, counts: dict, keys) -> dict[str, list]:
    """{(bucket, key): n} → {key: [n per bucket]}, zeros filled in."""
    return {k: [counts.get((s, k), 0) for s in window.starts] for k in keys}


# --- starts and their durations ----------------------------------------------


class PercentileCont(Aggregate):
    """PostgreSQL's ``percentile_cont(fraction)``: linear interpolation
    between the two nearest values, as ``percentile`` computes."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, fraction: float, **extra):
        super().__init__(expression, fraction=float(fraction), **extra)


def _epoch(expression) -> Func:
    return Func(
        expression, template="EXTRACT(EPOCH FROM %(expressions)s)",
        output_field=FloatField(),
    )  # fmt: skip


def percentile(values: list[float], fraction: float) -> float | None:
    """``percentile_cont`` in Python: ``values`` need not be sorted."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * fraction
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def start_series(window: Window):
    """Ended starts per bucket by outcome, and p50/p95 of the time from a
    worker's creation to ready, per bucket (None: no start became ready).
    One grouped query on PostgreSQL; elsewhere a second one reads the
    bucket's ready durations and interpolates the same way."""
    ended = ended_starts(_in_window(window, WorkerEvent.objects)).annotate(
        bucket=window.trunc("at")
    )
    grouped = ended.order_by().values("bucket", "to_status")
    in_sql = _sql_percentiles()
    if in_sql:
        took = _epoch(F("took"))
        grouped = grouped.annotate(
            p50=PercentileCont(took, 0.5), p95=PercentileCont(took, 0.95)
        )
    rows = list(grouped.annotate(n=Count("id")))
    counts = {(r["bucket"], START_OUTCOMES[r["to_status"]]): r["n"] for r in rows}
    if in_sql:
        ready = {r["bucket"]: (r["p50"], r["p95"]) for r in rows
                 if r["to_status"] == states.READY}  # fmt: skip
    else:
        ready = _ready_percentiles(ended.filter(to_status=states.READY))
    p50 = [_rounded(ready.get(s, (None, None))[0]) for s in window.starts]
    p95 = [_rounded(ready.get(s, (None, None))[1]) for s in window.starts]
    return _per_bucket(window, counts, START_KINDS), p50, p95


def _sql_percentiles() -> bool:
    return connection.vendor == "postgresql"


def _ready_percentiles(ready) -> dict:
    durations: dict[datetime, list[float]] = defaultdict(list)
    for bucket, took in ready.order_by().values_list("bucket", "took"):
        durations[bucket].append(took.total_seconds())
    return {
        bucket: (percentile(values, 0.5), percentile(values, 0.95))
        for bucket, values in durations.items()
    }


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)


# --- workers by status over time -----------------------------------------------


def status_series(window: Window) -> tuple[list[datetime], dict[str, list[int]]]:
    """Active workers by status at the window's start and each bucket's
    end (the newest point: now). Three queries; see the module docstring."""
    now_counts = _status_counts()
    net: dict[datetime, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    moves = (
        WorkerEvent.objects.filter(kind=EventKind.TRANSITION, at__gte=window.start)
        .exclude(from_status="")
        .annotate(bucket=window.trunc("at"))
        .order_by()
        .values_list("bucket", "from_status", "to_status")
        .annotate(n=Count("id"))
    )
    for bucket, from_status, to_status, n in moves:
        net[bucket][to_status] += n
        net[bucket][from_status] -= n
    born = (
        Worker.objects.filter(created_at__gte=window.start)
        .annotate(bucket=window.trunc("created_at"))
        .order_by()
        .values_list("bucket")
        .annotate(n=Count("id"))
    )
    for bucket, n in born:
        net[bucket][states.STARTING] += n
    points = [window.start, *window.ends[:-1]]
    series = {
        status: [
            now_counts.get(status, 0)
            - sum(d[status] for bucket, d in net.items() if bucket >= point)
            for point in points
        ]
        + [now_counts.get(status, 0)]
        for status in SHOWN_STATUSES
    }
    return [*points, window.now], series


def _status_counts() -> dict[str, int]:
    if counts_kept(connection):
        kept = WorkerStatusCount.objects.values_list("status").annotate(n=Sum("n"))
        return dict(kept.order_by())
    rows = Worker.objects.order_by().values_list("status").annotate(n=Count("id"))
    return dict(rows)


# --- reaper actions ------------------------------------------------------------


def reaper_series(window: Window) -> dict[str, list[int]]:
    """Workers automation acted on, per bucket, by reason."""
    kinds = (EventKind.TRANSITION, EventKind.AUTOMATION)  # all reapers write
    events = _in_window(window, WorkerEvent.objects.filter(kind__in=kinds))
    rows = (
        reaper_actions(events)
        .annotate(bucket=window.trunc("at"))
        .order_by()
        .values_list("bucket", "action")
        .annotate(n=Count("id"))
    )
    counts = {(bucket, action): n for bucket, action, n in rows}
    return _per_bucket(window, counts, REAPER_REASONS)


# --- GPU units in use vs quota ---------------------------------------------------


def gpu_use() -> tuple[list[GpuUse], int]:
    """GPU units in use now against each project's quota: projects with a
    quota or with units in use, fullest first, at most
    ``GPU_PROJECTS_SHOWN`` (and how many more there are)."""
    used: dict[str, Decimal] = defaultdict(Decimal)
    for row in gpu_units_in_use():
        used[row["project__slug"] or ""] += row["units"]
    quotas = project_gpu_quotas()
    rows = [
        GpuUse(slug, used.get(slug, Decimal(0)), quotas.get(slug, Decimal(0)))
        for slug in set(used) | set(quotas)
    ]
    rows.sort(key=lambda g: (-_fullness(g), -g.quota, g.project))
    return rows[:GPU_PROJECTS_SHOWN], max(0, len(rows) - GPU_PROJECTS_SHOWN)


def _fullness(use: GpuUse) -> Decimal:
    return use.in_use / use.quota if use.quota else Decimal("Infinity")
