"""Gauges read from the database at scrape time: the fleet as it is now,
the same from every process. Five queries: one grouped pass over the
active workers (the partial index ``worker_active_by_backend``) gives
statuses, health, stale, stop-failed, idle-overdue and probe latency
buckets as conditional counts; then GPU units, quotas, active users and
sessions. The cost follows the active fleet, not the history of rows."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from decimal import Decimal

from django.contrib.sessions.models import Session
from django.db.models import Count, Q, Sum
from django.utils import timezone
from prometheus_client.core import (
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    Metric,
)

from ops import metric_defs as m
from workers import states
from workers.models import Worker, stale_q
from workspaces.models import Project

LATENCY_BOUNDS = (*m.PROBE_LATENCY.buckets, None)  # None: +Inf


def gauge(metric: m.MetricDef) -> GaugeMetricFamily:
    return GaugeMetricFamily(metric.name, metric.help, labels=metric.labels)


def _active_rows(now) -> list[dict]:
    probed = Q(status__in=states.PROBED_STATUSES, health_latency_ms__isnull=False)
    latency = {
        f"le{i}": Count(
            "id",
            filter=probed & Q(health_latency_ms__lte=b * 1000) if b else probed,
        )
        for i, b in enumerate(LATENCY_BOUNDS)
    }
    return list(
        Worker.objects.filter(status__in=states.ACTIVE_STATUSES)
        .order_by()
        .values("status", "backend", "resource_class_id", "health")
        .annotate(
            n=Count("id"),
            stale=Count("id", filter=stale_q(now)),
            stop_failed=Count(
                "id", filter=Q(status=states.STOPPING) & ~Q(error_code="")
            ),
            overdue=Count(
                "id",
                filter=Q(
                    status=states.READY,
                    next_action=states.NEXT_IDLE_STOP,
                    next_action_at__lte=now,
                ),
            ),
            latency_ms=Sum("health_latency_ms", filter=probed),
            **latency,
        )
    )


def gpu_units_in_use() -> list[dict]:
    """Effective GPU units held by allocated workers (the statuses launch
    counts against quotas), by ``project__slug`` and ``gpu_model``. One
    grouped query; shared with the console's fleet-health charts."""
    return list(
        Worker.objects.filter(status__in=states.ALLOCATED_STATUSES, gpu_units__gt=0)
        .order_by()
        .values("project__slug", "gpu_model")
        .annotate(units=Sum("gpu_units"))
    )


def project_gpu_quotas() -> dict[str, Decimal]:
    """slug → GPU quota of every project with one (0 allows no GPUs)."""
    return dict(
        Project.objects.filter(gpu_quota__gt=0)
        .order_by("slug")
        .values_list("slug", "gpu_quota")
    )


class FleetCollector:
    """prometheus-client collector; ``collect`` runs the queries."""

    def describe(self) -> list:
        return []  # no queries when registered

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        yield from self._from_active(_active_rows(now))
        yield from self._gpus()
        yield self._single(
            m.ACTIVE_USERS,
            Worker.objects.filter(status__in=states.ALLOCATED_STATUSES)
            .order_by()
            .values("owner_id")
            .distinct()
            .count(),
        )
        yield self._single(
            m.OPEN_SESSIONS, Session.objects.filter(expire_date__gt=now).count()
        )

    def _from_active(self, rows: list[dict]) -> Iterator[Metric]:
        sums: dict[str, Counter] = defaultdict(Counter)
        latency: dict[str, list[float]] = {}
        for row in rows:
            status, backend = row["status"], row["backend"]
            sums["workers"][(status, backend, row["resource_class_id"] or "")] += row[
                "n"
            ]
            sums["stale"][(status, backend)] += row["stale"]
            sums["stop_failed"][(backend,)] += row["stop_failed"]
            sums["overdue"][(backend,)] += row["overdue"]
            if status in states.PROBED_STATUSES:
                sums["health"][(backend, row["health"] or "unknown")] += row["n"]
            buckets = latency.setdefault(backend, [0.0] * (len(LATENCY_BOUNDS) + 1))
            for i in range(len(LATENCY_BOUNDS)):
                buckets[i] += row[f"le{i}"]
            buckets[-1] += (row["latency_ms"] or 0) / 1000
        for metric, key in (
            (m.WORKERS, "workers"),
            (m.WORKERS_STALE, "stale"),
            (m.WORKERS_STOP_FAILED, "stop_failed"),
            (m.WORKERS_IDLE_OVERDUE, "overdue"),
            (m.WORKERS_BY_HEALTH, "health"),
        ):
            family = gauge(metric)
            for labels, value in sorted(sums[key].items()):
                if value or key in ("workers", "health"):
                    family.add_metric(list(labels), value)
            yield family
        yield self._latency(latency)

    @staticmethod
    def _latency(latency: dict[str, list[float]]) -> GaugeHistogramMetricFamily:
        metric = m.PROBE_LATENCY
        family = GaugeHistogramMetricFamily(
            metric.name, metric.help, labels=metric.labels
        )
        bounds = [m.le_text(b) if b else "+Inf" for b in LATENCY_BOUNDS]
        for backend, values in sorted(latency.items()):
            if values[-2]:  # at least one probed worker
                buckets = list(zip(bounds, values[:-1], strict=True))
                family.add_metric([backend], buckets, gsum_value=values[-1])
        return family

    @staticmethod
    def _gpus() -> Iterator[GaugeMetricFamily]:
        in_use = gauge(m.GPU_IN_USE)
        for row in gpu_units_in_use():
            project = row["project__slug"] or "none"
            in_use.add_metric([project, row["gpu_model"] or "any"], float(row["units"]))
        yield in_use
        quota = gauge(m.GPU_QUOTA)
        for slug, units in project_gpu_quotas().items():
            quota.add_metric([slug], float(units))
        yield quota

    @staticmethod
    def _single(metric: m.MetricDef, value: float) -> GaugeMetricFamily:
        family = gauge(metric)
        family.add_metric([], value)
        return family
