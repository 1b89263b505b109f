"""Metrics kept by the process that sees the event: HTTP request latency
(``ops.middleware``) and the /w/ proxy's requests, bytes and open sockets
(``ops.proxy_traffic`` calls the functions below). prometheus-client
objects in the default registry: each process counts only what it served.
With PROMETHEUS_MULTIPROC_DIR set (several uvicorn workers on a host) each
process writes its own file and /metrics sums those of the host; processes
on other hosts are summed by Prometheus (``sum()`` across instances).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from ops.metric_defs import (
    HTTP_LATENCY,
    PROXY_BYTES,
    PROXY_OPEN_SOCKETS,
    PROXY_REQUESTS,
)

http_latency = Histogram(
    HTTP_LATENCY.name,
    HTTP_LATENCY.help,
    HTTP_LATENCY.labels,
    buckets=HTTP_LATENCY.buckets,
)
_proxy_requests = Counter(
    PROXY_REQUESTS.name, PROXY_REQUESTS.help, PROXY_REQUESTS.labels
)
_proxy_bytes = Counter(PROXY_BYTES.name, PROXY_BYTES.help, PROXY_BYTES.labels)
_proxy_sockets = Gauge(
    PROXY_OPEN_SOCKETS.name, PROXY_OPEN_SOCKETS.help, multiprocess_mode="livesum"
)


def status_class(status: int) -> str:
    """200 -> "2xx": bounded label values."""
    return f"{int(status) // 100}xx"


def proxy_request_done(*, kind: str, status: int) -> None:
    """One request (``kind`` "http") or socket (``kind`` "websocket") the
    proxy answered with ``status``."""
    _proxy_requests.labels(kind=kind, status=status_class(status)).inc()


def proxy_bytes_moved(*, direction: str, amount: int) -> None:
    """``direction``: "upstream" (client -> runtime) or "downstream"."""
    if amount > 0:
        _proxy_bytes.labels(direction=direction).inc(amount)


def proxy_socket_opened() -> None:
    _proxy_sockets.inc()


def proxy_socket_closed() -> None:
    _proxy_sockets.dec()
