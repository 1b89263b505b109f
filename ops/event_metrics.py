"""Counters and histograms folded from the append-only ``WorkerEvent`` log.

Every start, stop, failure and automated action already leaves an event,
written by whichever process did it (a Celery worker on any host, a web
process). Folding the log gives every scraping process the same cumulative
numbers without any instrumentation in those processes: the first scrape
folds the whole log, later ones only the events past the last id seen.

Event ids come from a sequence, so a transaction may commit an id *below*
one already folded. Each fold therefore reads one snapshot (REPEATABLE
READ), remembers the ids missing below the newest one as gaps and folds
them when they appear; a gap still empty after ``GAP_TTL`` was a rolled
back insert and is dropped.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import (
    Case,
    CharField,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    Max,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.fields.json import KeyTextTransform
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

from ops import metric_defs as m
from workers import states
from workers.models import EventKind, WorkerEvent

GAP_TTL = 600.0  # seconds an id below the newest may still commit
GAP_WINDOW = 10_000  # ids below the newest that are checked for gaps
START_OUTCOMES = {
    states.READY: "ready",
    states.FAILED: "failed",
    "stopping": "cancelled",
}
STOP_ATTEMPT = "stop_attempt"  # workers.services.stopping.STOP_ATTEMPT
TRANSITION = EventKind.TRANSITION
REAPER_LABELS = (
    "reap_idle",
    "reap_plan_windows",
    "preemption",
    "cleanup_stale",
    "reconcile_workers",
)
# Every value ``reaper_reason`` gives, in the order charts list them.
REAPER_REASONS = (
    "idle",
    "plan_window",
    "stale",
    "preempted",
    "orphan",
    "vanished",
    "start_timeout",
)


def reaper_actions(events):
    """``events`` that are reaper actions, each annotated with its
    ``action`` (a ``REAPER_REASONS`` value). Shared by /metrics and the
    console's fleet-health charts, so both count the same things."""
    return (
        events.filter(actor_label__in=REAPER_LABELS)
        .annotate(action=reaper_reason())
        .exclude(action=None)
    )


def ended_starts(events):
    """Transitions that ended a start (to ready, failed or stopping), each
    annotated with ``took``: from the worker's creation to the event."""
    return events.filter(
        kind=TRANSITION,
        from_status=states.STARTING,
        to_status__in=list(START_OUTCOMES),
    ).annotate(
        took=ExpressionWrapper(
            F("at") - F("worker__created_at"), output_field=DurationField()
        )
    )


def reaper_reason() -> Case:
    """Which reaper action an event is, or NULL for events that are not."""
    to_stop = Q(kind=TRANSITION, to_status=states.STOPPING)
    reconcile_failed = Q(
        kind=TRANSITION, actor_label="reconcile_workers", to_status=states.FAILED
    )
    return Case(
        When(to_stop & Q(actor_label="reap_idle"), then=Value("idle")),
        When(to_stop & Q(actor_label="reap_plan_windows"), then=Value("plan_window")),
        When(to_stop & Q(actor_label="preemption"), then=Value("preempted")),
        When(Q(kind=TRANSITION, actor_label="cleanup_stale"), then=Value("stale")),
        When(orphan_q(), then=Value("orphan")),
        When(
            reconcile_failed & Q(worker__error_code="timeout"),
            then=Value("start_timeout"),
        ),
        When(reconcile_failed, then=Value("vanished")),
        default=None,
        output_field=CharField(),
    )


def orphan_q() -> Q:
    return Q(
        kind=EventKind.AUTOMATION,
        actor_label="reconcile_workers",
        reason__startswith="Orphaned runtime",
    )


def _bucket_counts(field: str, bounds) -> dict:
    """Cumulative ``Count`` per bucket bound (and +Inf) of a duration."""
    counts = {
        f"le{i}": Count("id", filter=Q(**{f"{field}__lte": timedelta(seconds=b)}))
        for i, b in enumerate(bounds)
    }
    counts["inf"] = Count("id")
    return counts


def _seconds(value) -> float:
    return value.total_seconds() if value is not None else 0.0


class EventLogFold:
    """Cumulative series folded from the event log (one per process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.watermark: int | None = None
        self.gaps: dict[int, float] = {}
        self.counters: dict[tuple, float] = defaultdict(float)
        self.histograms: dict[tuple, list[float]] = {}

    # --- folding ------------------------------------------------------------

    def refresh(self) -> None:
        with self._lock, one_snapshot():
            newest = WorkerEvent.objects.aggregate(n=Max("id"))["n"] or 0
            low = self.watermark or 0
            now = time.monotonic()
            gaps = [i for i, t in self.gaps.items() if now - t < GAP_TTL]
            if newest <= low and not gaps:
                return
            scope = Q(id__gt=low, id__lte=newest)
            if gaps:
                scope |= Q(id__in=gaps)
            self._fold(WorkerEvent.objects.filter(scope))
            self._track_gaps(low, newest, gaps, now)
            self.watermark = max(newest, low)

    def _track_gaps(self, low: int, newest: int, gaps: list[int], now) -> None:
        start = max(low, newest - GAP_WINDOW)
        seen = set(
            WorkerEvent.objects.filter(
                Q(id__gt=start, id__lte=newest) | Q(id__in=gaps)
            ).values_list("id", flat=True)
        )
        self.gaps = {i: t for i, t in self.gaps.items() if i in gaps and i not in seen}
        for i in range(start + 1, newest + 1):
            if i not in seen:
                self.gaps[i] = now

    def _fold(self, events) -> None:
        self._fold_starts(events)
        self._fold_stops(events)
        self._fold_counts(
            m.STOP_FAILURES,
            events.filter(kind=EventKind.ERROR, data__has_key=STOP_ATTEMPT),
            backend=F("worker__backend"),
            error_code=KeyTextTransform("error_code", "data"),
        )
        self._fold_counts(
            m.REAPER_ACTIONS,
            reaper_actions(events),
            reason=F("action"),
        )
        self._fold_counts(
            m.ORPHANS,
            events.filter(orphan_q()),
            backend=F("worker__backend"),
            gpu=Case(
                When(worker__gpu_units__gt=0, then=Value("true")),
                default=Value("false"),
                output_field=CharField(),
            ),
        )

    def _fold_starts(self, events) -> None:
        ended = ended_starts(events)
        rows = (
            ended.order_by()
            .values("worker__backend", "to_status")
            .annotate(total=Sum("took"), **_bucket_counts("took", m.START_BUCKETS))
        )
        for row in rows:
            labels = (row["worker__backend"], START_OUTCOMES[row["to_status"]])
            self.counters[(m.STARTS.name, labels)] += row["inf"]
            self._add_histogram(m.START_DURATION, labels, row)
        self._fold_counts(
            m.START_FAILURES,
            ended.filter(to_status=states.FAILED),
            backend=F("worker__backend"),
            error_code=F("worker__error_code"),
        )

    def _fold_stops(self, events) -> None:
        began = WorkerEvent.objects.filter(
            worker_id=OuterRef("worker_id"),
            kind=TRANSITION,
            to_status=states.STOPPING,
            at__lte=OuterRef("at"),
        ).order_by("-at")
        stopped = (
            events.filter(
                kind=TRANSITION,
                from_status=states.STOPPING,
                to_status=states.STOPPED,
            )
            .annotate(began=Subquery(began.values("at")[:1]))
            .exclude(began=None)
            .annotate(
                took=ExpressionWrapper(
                    F("at") - F("began"), output_field=DurationField()
                )
            )
        )
        rows = (
            stopped.order_by()
            .values("worker__backend")
            .annotate(total=Sum("took"), **_bucket_counts("took", m.STOP_BUCKETS))
        )
        for row in rows:
            self._add_histogram(m.STOP_DURATION, (row["worker__backend"],), row)

    def _add_histogram(self, metric: m.MetricDef, labels: tuple, row: dict) -> None:
        key = (metric.name, labels)
        counts = [row[f"le{i}"] for i in range(len(metric.buckets))] + [row["inf"]]
        current = self.histograms.setdefault(key, [0.0] * (len(counts) + 1))
        for i, count in enumerate(counts):
            current[i] += count
        current[-1] += _seconds(row["total"])

    def _fold_counts(self, metric: m.MetricDef, events, **labels) -> None:
        # Aliased: a label may share its name with a model field ("reason").
        aliased = {f"label_{name}": value for name, value in labels.items()}
        rows = events.order_by().values(**aliased).annotate(n=Count("id"))
        for row in rows:
            key = tuple(row[f"label_{name}"] or "unknown" for name in metric.labels)
            self.counters[(metric.name, key)] += row["n"]

    # --- exporting ------------------------------------------------------------

    def families(self) -> Iterator:
        for metric in (
            m.STARTS,
            m.START_FAILURES,
            m.STOP_FAILURES,
            m.REAPER_ACTIONS,
            m.ORPHANS,
        ):
            family = CounterMetricFamily(metric.name, metric.help, labels=metric.labels)
            for (name, labels), value in sorted(self.counters.items()):
                if name == metric.name:
                    family.add_metric(list(labels), value)
            yield family
        for metric in (m.START_DURATION, m.STOP_DURATION):
            family = HistogramMetricFamily(
                metric.name, metric.help, labels=metric.labels
            )
            for (name, labels), values in sorted(self.histograms.items()):
                if name == metric.name:
                    bounds = [m.le_text(b) for b in metric.buckets] + ["+Inf"]
                    family.add_metric(
                        list(labels),
                        list(zip(bounds, values[:-1], strict=True)),
                        values[-1],
                    )
            yield family


@contextlib.contextmanager
def one_snapshot():
    """Every query of a fold sees the same committed rows."""
    if connection.in_atomic_block:  # a caller's transaction (tests) decides
        yield
        return
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield


FOLD = EventLogFold()


class EventLogCollector:
    def describe(self) -> list:
        return []

    def collect(self) -> Iterator:
        FOLD.refresh()
        yield from FOLD.families()
