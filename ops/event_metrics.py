"""Counters and histograms folded from the append-only ``WorkerEvent`` log.

Every start, stop, failure and automated action already leaves an event,
written by whichever process did it (a Celery worker on any host, a web
process). Folding the log gives every scraping process the same cumulative
numbers without any instrumentation in those processes: a process's first
scrape continues from the newest saved fold (``ops.fold_checkpoint``; the
whole log when there is none), later ones fold only the events past the
last id seen.

Event ids come from a sequence, so a transaction may commit an id *below*
one already folded. Each fold therefore reads one snapshot (REPEATABLE
READ), remembers the ids missing below the newest one as gaps and folds
them when they appear; a gap still empty after ``GAP_TTL`` was a rolled
back insert and is dropped. Gaps are timed by the wall clock, so a process
that continues another's fold also continues its gaps' ages.
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
    FilteredRelation,
    Max,
    Q,
    Sum,
    Value,
    When,
)
from django.db.models.fields.json import KeyTextTransform
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

from ops import fold_checkpoint
from ops import metric_defs as m
from workers import states
from workers.models import EventKind, WorkerEvent

GAP_TTL = 600.0  # seconds an id below the newest may still commit
GAP_WINDOW = 10_000  # ids below the newest that are checked for gaps
# A process saves its fold at most this often (seconds): a new process then
# folds at most about this much of the log on its first scrape.
CHECKPOINT_SECONDS = 60.0
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
    """Which reaper action an event is, or NULL for events that are not.
    Counting an event differently here needs a new
    ``fold_checkpoint.FOLD_VERSION`` (saved folds counted the old way)."""
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
        self.saved_at = 0.0  # wall time of the checkpoint this fold continues
        self.gaps: dict[int, float] = {}
        self.counters: dict[tuple, float] = defaultdict(float)
        self.histograms: dict[tuple, list[float]] = {}

    # --- folding ------------------------------------------------------------

    def refresh(self) -> None:
        """Fold the events committed since the last refresh; the first one
        in a process starts from the saved checkpoint, and a refresh that
        moved forward saves one (after its snapshot has ended) when the one
        it continues is older than ``CHECKPOINT_SECONDS``."""
        with self._lock:
            with one_snapshot():
                newest = WorkerEvent.objects.aggregate(n=Max("id"))["n"] or 0
                if self.watermark is None:
                    self.restore(fold_checkpoint.load(newest))
                moved = self._fold_new(newest)
                due = moved and time.time() - self.saved_at >= CHECKPOINT_SECONDS
                if due:
                    self.saved_at = time.time()
                    state = self.state()
            if due:
                fold_checkpoint.save(self.watermark, state)

    def _fold_new(self, newest: int) -> bool:
        low = self.watermark or 0
        now = time.time()
        gaps = [i for i, t in self.gaps.items() if now - t < GAP_TTL]
        if newest <= low and not gaps:
            return False
        scope = Q(id__gt=low, id__lte=newest)
        if gaps:
            scope |= Q(id__in=gaps)
        self._fold(WorkerEvent.objects.filter(scope))
        self._track_gaps(low, newest, gaps, now)
        self.watermark = max(newest, low)
        return self.watermark > 0

    # --- the checkpoint: everything a fold needs to continue ------------------

    def state(self) -> dict:
        return {
            "watermark": self.watermark,
            "saved_at": self.saved_at,
            "anchor_at": fold_checkpoint.anchor_at(self.watermark),
            "gaps": {str(i): t for i, t in self.gaps.items()},
            "counters": [[n, list(ls), v] for (n, ls), v in self.counters.items()],
            "histograms": [[n, list(ls), v] for (n, ls), v in self.histograms.items()],
        }

    def restore(self, state: dict | None) -> None:
        """Continue from ``state`` (None: from the beginning of the log)."""
        self.reset()
        if not state:
            return
        self.watermark = state["watermark"]
        self.saved_at = state["saved_at"]
        self.gaps = {int(i): t for i, t in state["gaps"].items()}
        for name, labels, value in state["counters"]:
            self.counters[(name, tuple(labels))] = value
        for name, labels, values in state["histograms"]:
            self.histograms[(name, tuple(labels))] = values

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
        """Starts, their durations and the failed ones' error codes, from
        one grouped pass over the ended starts."""
        rows = (
            ended_starts(events)
            .annotate(
                failure=Case(
                    When(to_status=states.FAILED, then=F("worker__error_code")),
                    default=Value(""),
                    output_field=CharField(),
                )
            )
            .order_by()
            .values("worker__backend", "to_status", "failure")
            .annotate(total=Sum("took"), **_bucket_counts("took", m.START_BUCKETS))
        )
        for row in rows:
            backend = row["worker__backend"]
            labels = (backend, START_OUTCOMES[row["to_status"]])
            self.counters[(m.STARTS.name, labels)] += row["inf"]
            self._add_histogram(m.START_DURATION, labels, row)
            if row["to_status"] == states.FAILED:
                code = (backend or "unknown", row["failure"] or "unknown")
                self.counters[(m.START_FAILURES.name, code)] += row["inf"]

    def _fold_stops(self, events) -> None:
        """Stop durations: each stop's end joined to its start. A worker
        enters stopping at most once (``states.TRANSITIONS``: nothing leads
        back to it), so the join finds one row per stop."""
        stopping = Q(
            worker__events__kind=TRANSITION, worker__events__to_status=states.STOPPING
        )
        stopped = (
            events.filter(
                kind=TRANSITION, from_status=states.STOPPING, to_status=states.STOPPED
            )
            .annotate(began=FilteredRelation("worker__events", condition=stopping))
            .filter(began__at__isnull=False)
            .annotate(
                took=ExpressionWrapper(
                    F("at") - F("began__at"), output_field=DurationField()
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
