"""Every metric /metrics exports: name, type, help, labels, buckets, and
where its numbers come from. The alert rules and the dashboard may only use
names listed here (a test checks them)."""

from __future__ import annotations

import math
from dataclasses import dataclass

# Where a metric's numbers come from.
DB_GAUGE = "database, at scrape time"
EVENT_LOG = "the WorkerEvent log, folded incrementally per process"
SHARED = "shared counters (Redis, or memory in embedded mode)"
PROCESS = "this process (prometheus-client; multiprocess mode when PROMETHEUS_MULTIPROC_DIR is set)"

START_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600)
STOP_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800)
TASK_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
PROBE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


@dataclass(frozen=True)
class MetricDef:
    name: str  # without the _total suffix of counters
    kind: str  # counter | gauge | histogram | gaugehistogram
    help: str
    labels: tuple[str, ...] = ()
    source: str = DB_GAUGE
    buckets: tuple[float, ...] = ()

    @property
    def exported_names(self) -> tuple[str, ...]:
        """The series names a query may use."""
        if self.kind == "counter":
            return (f"{self.name}_total",)
        if self.kind == "histogram":
            return tuple(f"{self.name}{s}" for s in ("_bucket", "_sum", "_count"))
        if self.kind == "gaugehistogram":
            return tuple(f"{self.name}{s}" for s in ("_bucket", "_gsum", "_gcount"))
        return (self.name,)


def _m(*args, **kwargs) -> MetricDef:
    metric = MetricDef(*args, **kwargs)
    ALL.append(metric)
    return metric


ALL: list[MetricDef] = []

# --- database gauges ----------------------------------------------------------
WORKERS = _m(
    "notebook_workers",
    "gauge",
    "Active workers (starting, ready, busy, stopping) by status, backend and resource class.",
    ("status", "backend", "resource_class"),
)
WORKERS_STALE = _m(
    "notebook_workers_stale",
    "gauge",
    "Workers starting or busy past their stale threshold.",
    ("status", "backend"),
)
WORKERS_STOP_FAILED = _m(
    "notebook_workers_stop_failed",
    "gauge",
    "Workers still stopping after a failed stop attempt.",
    ("backend",),
)
WORKERS_IDLE_OVERDUE = _m(
    "notebook_workers_idle_overdue",
    "gauge",
    "Ready workers idle past their idle timeout (their idle stop is due).",
    ("backend",),
)
WORKERS_BY_HEALTH = _m(
    "notebook_workers_by_health",
    "gauge",
    "Ready and busy workers by the result of their latest health probe.",
    ("backend", "health"),
)
PROBE_LATENCY = _m(
    "notebook_worker_probe_latency_seconds",
    "gaugehistogram",
    "Latency of each ready or busy worker's latest health probe.",
    ("backend",),
    buckets=PROBE_BUCKETS,
)
GPU_IN_USE = _m(
    "notebook_gpu_units_in_use",
    "gauge",
    "Effective GPU units held by allocated workers, by project and GPU model.",
    ("project", "model"),
)
GPU_QUOTA = _m(
    "notebook_project_gpu_quota",
    "gauge",
    "Each project's GPU quota in effective units (projects with a quota).",
    ("project",),
)
ACTIVE_USERS = _m(
    "notebook_active_users", "gauge", "Users with at least one allocated worker."
)
OPEN_SESSIONS = _m("notebook_open_sessions", "gauge", "Unexpired sign-in sessions.")

# --- the event log ------------------------------------------------------------
STARTS = _m(
    "notebook_worker_starts",
    "counter",
    "Starts that ended: outcome ready, failed or cancelled (stopped while starting).",
    ("backend", "outcome"),
    EVENT_LOG,
)
START_DURATION = _m(
    "notebook_worker_start_duration_seconds",
    "histogram",
    "From a worker's creation until its start ended, by outcome.",
    ("backend", "outcome"),
    EVENT_LOG,
    START_BUCKETS,
)
START_FAILURES = _m(
    "notebook_worker_start_failures",
    "counter",
    "Starts that failed, by error code.",
    ("backend", "error_code"),
    EVENT_LOG,
)
STOP_DURATION = _m(
    "notebook_worker_stop_duration_seconds",
    "histogram",
    "From a worker entering stopping until the backend confirmed it stopped.",
    ("backend",),
    EVENT_LOG,
    STOP_BUCKETS,
)
STOP_FAILURES = _m(
    "notebook_worker_stop_failures",
    "counter",
    "Failed stop attempts, by error code.",
    ("backend", "error_code"),
    EVENT_LOG,
)
REAPER_ACTIONS = _m(
    "notebook_reaper_actions",
    "counter",
    "Workers automation acted on, by reason: idle, plan_window, stale, "
    "preempted, orphan, vanished, start_timeout.",
    ("reason",),
    EVENT_LOG,
)
ORPHANS = _m(
    "notebook_orphaned_runtimes_terminated",
    "counter",
    "Runtimes no active worker claimed, terminated by reconcile (gpu: the worker held GPUs).",
    ("backend", "gpu"),
    EVENT_LOG,
)

# --- shared counters (Celery tasks) -------------------------------------------
CELERY_TASKS = _m(
    "notebook_celery_tasks",
    "counter",
    "Celery task runs by outcome: success, failure, retry.",
    ("task", "outcome"),
    SHARED,
)
CELERY_TASK_DURATION = _m(
    "notebook_celery_task_duration_seconds",
    "histogram",
    "Celery task run time.",
    ("task",),
    SHARED,
    TASK_BUCKETS,
)
RECONCILE_RUNS = _m(
    "notebook_reconcile_runs",
    "counter",
    "Reconcile passes: success, partial (a backend could not be listed), failure.",
    ("outcome",),
    SHARED,
)
RECONCILE_DURATION = _m(
    "notebook_reconcile_duration_seconds",
    "histogram",
    "Reconcile pass run time.",
    (),
    SHARED,
    TASK_BUCKETS,
)
RECONCILE_LAST_SUCCESS = _m(
    "notebook_reconcile_last_success_timestamp_seconds",
    "gauge",
    "Unix time of the last reconcile pass that reached every backend.",
    (),
    SHARED,
)
QUEUE_LENGTH = _m(
    "notebook_celery_queue_length",
    "gauge",
    "Messages waiting in a Celery queue (Redis broker only).",
    ("queue",),
    "the broker (Redis LLEN), at scrape time",
)

# --- this process -------------------------------------------------------------
HTTP_LATENCY = _m(
    "notebook_http_request_duration_seconds",
    "histogram",
    "Django request handling time by view, method and status class; this process.",
    ("view", "method", "status"),
    PROCESS,
    HTTP_BUCKETS,
)
PROXY_REQUESTS = _m(
    "notebook_proxy_requests",
    "counter",
    "Requests and sockets on /w/ (forwarded, or answered by the platform: login, "
    "stopped page, 502), by kind (http, websocket) and status class; this process.",
    ("kind", "status"),
    PROCESS,
)
PROXY_BYTES = _m(
    "notebook_proxy_bytes",
    "counter",
    "Body bytes through /w/, by direction (upstream from clients, downstream to "
    "them); this process.",
    ("direction",),
    PROCESS,
)
PROXY_OPEN_SOCKETS = _m(
    "notebook_proxy_open_websockets",
    "gauge",
    "WebSockets on /w/ open now in this process.",
    (),
    PROCESS,
)


def exported_names() -> set[str]:
    return {name for metric in ALL for name in metric.exported_names}


def le_text(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(float(bound))


def histogram_updates(
    metric: MetricDef, labels: dict[str, str], value: float
) -> list[tuple[str, dict[str, str], float]]:
    """Shared-counter increments recording one observation of ``value``:
    each cumulative bucket it falls in, the count and the sum."""
    updates = [
        (f"{metric.name}_bucket", {**labels, "le": le_text(bound)}, 1)
        for bound in (*metric.buckets, math.inf)
        if value <= bound
    ]
    updates.append((f"{metric.name}_count", labels, 1))
    updates.append((f"{metric.name}_sum", labels, value))
    return updates
