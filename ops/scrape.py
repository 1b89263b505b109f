"""What /metrics serves: one registry per scrape combining

* ``FleetCollector``: gauges read from the database now;
* ``EventLogCollector``: counters and histograms folded from the event log;
* ``SharedCollector``: the shared counters Celery tasks update, and the
  broker's queue lengths;
* this process's prometheus-client metrics (HTTP latency, the proxy), or,
  with PROMETHEUS_MULTIPROC_DIR set, every process's on this host.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterator

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)

from ops import metric_defs as m
from ops import shared_counters
from ops.event_metrics import EventLogCollector
from ops.fleet_metrics import FleetCollector

SHARED_METRICS = [d for d in m.ALL if d.source == m.SHARED]


class SharedCollector:
    def describe(self) -> list:
        return []

    def collect(self) -> Iterator:
        series: dict[str, dict] = defaultdict(dict)
        for raw, value in shared_counters.read_all().items():
            name, labels = shared_counters.parse_field(raw)
            series[name][tuple(sorted(labels.items()))] = value
        for metric in SHARED_METRICS:
            yield _family(metric, series)
        yield _queue_lengths()


def _family(metric: m.MetricDef, series: dict):
    if metric.kind == "counter":
        family = CounterMetricFamily(metric.name, metric.help, labels=metric.labels)
        for labels, value in series[metric.name].items():
            family.add_metric([dict(labels)[k] for k in metric.labels], value)
        return family
    if metric.kind == "gauge":
        family = GaugeMetricFamily(metric.name, metric.help, labels=metric.labels)
        for labels, value in series[metric.name].items():
            family.add_metric([dict(labels)[k] for k in metric.labels], value)
        return family
    return _histogram(metric, series)


def _histogram(metric: m.MetricDef, series: dict) -> HistogramMetricFamily:
    family = HistogramMetricFamily(metric.name, metric.help, labels=metric.labels)
    bounds = [m.le_text(b) for b in metric.buckets] + ["+Inf"]
    for labels, count in series[f"{metric.name}_count"].items():
        values = dict(labels)
        buckets = series[f"{metric.name}_bucket"]
        cumulative = [
            (le, buckets.get(tuple(sorted({**values, "le": le}.items())), 0.0))
            for le in bounds
        ]
        cumulative[-1] = ("+Inf", count)
        total = series[f"{metric.name}_sum"].get(labels, 0.0)
        family.add_metric([values[k] for k in metric.labels], cumulative, total)
    return family


def _queue_lengths() -> GaugeMetricFamily:
    """LLEN of each Celery queue on a Redis broker (kombu keeps a queue as
    a list named after it); nothing in embedded mode."""
    family = GaugeMetricFamily(
        m.QUEUE_LENGTH.name, m.QUEUE_LENGTH.help, labels=m.QUEUE_LENGTH.labels
    )
    client = shared_counters._client()
    if client is None:
        return family
    from config.celery import app

    queues = [app.conf.task_default_queue]
    try:
        pipe = client.pipeline(transaction=False)
        for queue in queues:
            pipe.llen(queue)
        lengths = pipe.execute()
    except Exception:  # noqa: BLE001 - the gauge is missing, /readyz says why
        return family
    for queue, length in zip(queues, lengths, strict=True):
        family.add_metric([queue], length)
    return family


class _ProcessCollector:
    """This process's registry, or every process's on this host."""

    def describe(self) -> list:
        return []

    def collect(self) -> Iterator:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            yield from registry.collect()
        else:
            yield from REGISTRY.collect()


def render() -> bytes:
    """The exposition text of one scrape."""
    registry = CollectorRegistry(auto_describe=False)
    for collector in (
        FleetCollector(),
        EventLogCollector(),
        SharedCollector(),
        _ProcessCollector(),
    ):
        registry.register(collector)
    return generate_latest(registry)
