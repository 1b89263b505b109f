"""Live reads from runtimes for the console: health probes and backend
events/logs. Each call is bounded by a timeout and degrades to a clear
"unavailable" instead of failing the page; nothing here writes.

Probes and backends are reached through ``workers.services.runtime``, the one
seam where tests and the embedded demo install fakes.
"""

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from workers import states
from workers.models import Worker
from workers.probe import Health
from workers.sanitize import sanitize

log = logging.getLogger(__name__)
LOG_TAIL = 60
# A few threads so a hung backend cannot hold a request past its timeout;
# calls still stuck there only delay later calls, which then time out too.
_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="console-runtime")


@dataclass(frozen=True)
class LiveHealth:
    health: Health
    latency_ms: int | None = None
    message: str = ""


@dataclass
class BackendView:
    available: bool
    message: str = ""
    phase: str = ""
    events: list[str] = field(default_factory=list)
    logs: str = ""


def _timeout() -> float:
    return float(settings.NOTEBOOK_RUNTIME_PROBE_TIMEOUT_SECONDS)


def _bounded(call: Callable[[], Any], timeout: float) -> Any:
    """Run ``call`` with a deadline; raises TimeoutError when it passes."""
    future = _pool.submit(call)
    try:
        return future.result(timeout=timeout)
    except FutureTimeout as exc:
        future.cancel()
        raise TimeoutError(f"no answer within {timeout:g} s") from exc


def attach_live_health(rows: Sequence[Worker]) -> None:
    """Probe the active rows concurrently and set ``row.live`` on each.

    The rows were read without their runtime columns, so the probe gets a
    full copy of them from one extra query.
    """
    wanted = [w.pk for w in rows if w.status in states.ACTIVE_STATUSES]
    full = Worker.objects.in_bulk(wanted)
    targets = [full[pk] for pk in wanted if pk in full]
    if not targets:
        return
    try:
        reports = _bounded(lambda: _probe(targets), _timeout() + 1.0)
    except Exception as exc:  # noqa: BLE001 - the page must still render
        log.warning("live probe failed: %s", exc)
        reports = [None] * len(targets)
    by_id = {w.pk: w for w in rows}
    for target, report in zip(targets, reports, strict=True):
        by_id[target.pk].live = _live(report)


def _probe(targets: list[Worker]) -> list:
    from workers.services import runtime

    return list(runtime.probe(targets))


def _live(report) -> LiveHealth:
    if report is None:
        return LiveHealth(
            Health.UNREACHABLE, message="The probe gave no answer in time."
        )
    return LiveHealth(
        health=report.health,
        latency_ms=report.latency_ms,
        message=sanitize(getattr(report, "message", "")),
    )


def backend_view(worker: Worker) -> BackendView:
    """Recent backend events and log lines for the detail panel."""
    if not worker.runtime_ref:
        return BackendView(False, "No runtime was recorded for this worker.")
    if worker.status == states.STOPPED:
        return BackendView(False, "The runtime was removed when the worker stopped.")
    try:
        return _bounded(lambda: _read_backend(worker), _timeout())
    except Exception as exc:  # noqa: BLE001 - a backend outage is shown, not raised
        reason = sanitize(str(exc), extra_secrets=(worker.access_token,))
        return BackendView(False, f"Backend events unavailable: {reason}")


def _read_backend(worker: Worker) -> BackendView:
    from workers.backends.base import RuntimeRef
    from workers.services import runtime

    backend = runtime.backend_for(worker.backend)
    ref = RuntimeRef.from_json(worker.runtime_ref)
    observation = backend.observe(ref)
    secrets = (worker.access_token,)
    return BackendView(
        available=True,
        phase=str(observation.phase),
        message=sanitize(observation.message, extra_secrets=secrets),
        events=[sanitize(e, extra_secrets=secrets) for e in observation.events],
        logs=sanitize(backend.logs(ref, tail=LOG_TAIL), extra_secrets=secrets),
    )
