"""One health probe for every backend's runtimes. No ORM access.

JupyterLab / Jupyter Server: ``GET <base>api/status`` with
``Authorization: token <token>`` gives last activity, kernel and connection
counts; when kernels exist, ``GET <base>api/kernels`` tells whether one is
executing. code-server: ``GET <base>healthz``. Custom images: ``GET
<base><health_path>``. ``probe_many`` probes concurrently with a bounded pool
and a hard per-endpoint timeout, so a black-holed runtime costs one timeout,
not a stalled sweep.

The HTTP exchange is asyncio streams + ``h11`` (the HTTP/1.1 parser under
httpx): a probe is one GET, and at 1,000 endpoints on two cores httpx's
per-request overhead alone took more than a second of the 3 s budget.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import h11

DEFAULT_TIMEOUT = 2.0
DEFAULT_CONCURRENCY = 256
MAX_BODY_BYTES = 1024 * 1024


class Health(StrEnum):
    READY = "ready"  # answered 2xx on its health path
    STARTING = "starting"  # answered, but not ready yet (502/503/504, 404)
    ERROR = "error"  # answered with an error (401/403/500...)
    UNREACHABLE = "unreachable"  # refused, reset or timed out


@dataclass(frozen=True)
class ProbeTarget:
    endpoint: str  # the runtime's base URL, e.g. http://10.0.0.5:8888/w/ws1/
    ide_kind: str = "jupyterlab"
    token: str = ""
    health_path: str = ""  # custom images only
    key: str = ""  # caller's id for the result, e.g. the worker id


@dataclass(frozen=True)
class ProbeResult:
    target: ProbeTarget
    health: Health
    latency_seconds: float
    last_activity: datetime | None = None
    kernels: int = 0
    connections: int = 0
    busy: bool = False  # a kernel is executing or a client is connected
    status_code: int = 0
    message: str = ""

    @property
    def latency_ms(self) -> int:
        return round(self.latency_seconds * 1000)


def target_for_worker(worker: Any) -> ProbeTarget:
    """A target from anything shaped like a worker row (``id``, ``endpoint``,
    ``access_token``, ``launch_spec`` dict); reads attributes only."""
    spec = getattr(worker, "launch_spec", None) or {}
    return ProbeTarget(
        endpoint=worker.endpoint,
        ide_kind=spec.get("ide_kind", "jupyterlab"),
        token=worker.access_token,
        health_path=spec.get("health_path", ""),
        key=str(worker.id),
    )


def _url(target: ProbeTarget) -> str:
    base = target.endpoint if target.endpoint.endswith("/") else target.endpoint + "/"
    if target.ide_kind == "code-server":
        return base + "healthz"
    if target.ide_kind == "custom":
        return base + target.health_path.lstrip("/")
    return base + "api/status"


def _health_for(status_code: int) -> Health:
    if 200 <= status_code < 300:
        return Health.READY
    if status_code in (404, 502, 503, 504):
        return Health.STARTING
    return Health.ERROR


def _parse_time(value: object) -> datetime | None:
    if isinstance(value, int | float):  # code-server: epoch milliseconds
        return datetime.fromtimestamp(value / 1000, tz=UTC) if value else None
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


async def http_get(url: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """One GET over a fresh connection; returns (status, body). Raises
    OSError / h11.ProtocolError / ValueError on transport trouble."""
    parts = urlsplit(url)
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    context = ssl.create_default_context() if https else None
    reader, writer = await asyncio.open_connection(parts.hostname, port, ssl=context)
    try:
        conn = h11.Connection(h11.CLIENT)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        request_headers = [
            ("Host", parts.netloc),
            ("Connection", "close"),
            *headers.items(),
        ]
        request = h11.Request(
            method="GET", target=target or "/", headers=request_headers
        )
        writer.write(conn.send(request) + conn.send(h11.EndOfMessage()))
        return await _read_response(conn, reader)
    finally:
        writer.close()


async def _read_response(
    conn: h11.Connection, reader: asyncio.StreamReader
) -> tuple[int, bytes]:
    status, body = 0, bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await reader.read(65536))
        elif isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > MAX_BODY_BYTES:
                raise ValueError(f"answer larger than {MAX_BODY_BYTES} bytes")
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            return status, bytes(body)


async def _jupyter_details(target: ProbeTarget, headers: dict, body: dict) -> dict:
    kernels = int(body.get("kernels") or 0)
    connections = int(body.get("connections") or 0)
    executing = False
    if kernels:
        base = _url(target).removesuffix("api/status")
        status, raw = await http_get(base + "api/kernels", headers)
        if status == 200:
            executing = any(k.get("execution_state") == "busy" for k in json.loads(raw))
    return {
        "last_activity": _parse_time(body.get("last_activity")),
        "kernels": kernels,
        "connections": connections,
        "busy": executing or connections > 0,
    }


async def _probe(target: ProbeTarget, started: float) -> ProbeResult:
    headers = {"Authorization": f"token {target.token}"} if target.token else {}
    status, raw = await http_get(_url(target), headers)
    health = _health_for(status)
    details: dict = {}
    if health is Health.READY and target.ide_kind == "jupyterlab":
        details = await _jupyter_details(target, headers, json.loads(raw))
    elif health is Health.READY and target.ide_kind == "code-server":
        body = json.loads(raw)
        details = {
            "last_activity": _parse_time(body.get("lastHeartbeat")),
            "busy": body.get("status") == "alive",
        }
    return ProbeResult(
        target, health, time.perf_counter() - started, status_code=status, **details
    )


async def probe_target(target: ProbeTarget, timeout: float) -> ProbeResult:
    """Probe one target; never raises. ``timeout`` bounds the whole exchange
    (connect, answer, the optional kernels call)."""
    started = time.perf_counter()
    if not urlsplit(target.endpoint).hostname:
        return ProbeResult(target, Health.UNREACHABLE, 0.0, message="no endpoint yet")
    try:
        async with asyncio.timeout(timeout):
            return await _probe(target, started)
    except TimeoutError:
        return ProbeResult(
            target,
            Health.UNREACHABLE,
            time.perf_counter() - started,
            message=f"no answer within {timeout:g} s",
        )
    except (OSError, h11.ProtocolError) as exc:
        return ProbeResult(
            target,
            Health.UNREACHABLE,
            time.perf_counter() - started,
            message=f"{type(exc).__name__}: {exc}",
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return ProbeResult(
            target,
            Health.ERROR,
            time.perf_counter() - started,
            message=f"unexpected answer: {exc}",
        )


async def probe_many(
    targets: Sequence[ProbeTarget],
    timeout: float = DEFAULT_TIMEOUT,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> list[ProbeResult]:
    """Probe every target, at most ``concurrency`` at a time, each bounded by
    ``timeout`` seconds. Results come back in the order of ``targets``."""
    semaphore = asyncio.Semaphore(concurrency)

    async def bounded(target: ProbeTarget) -> ProbeResult:
        async with semaphore:
            return await probe_target(target, timeout)

    return list(await asyncio.gather(*(bounded(t) for t in targets)))


def probe_one(target: ProbeTarget, timeout: float = DEFAULT_TIMEOUT) -> ProbeResult:
    """Synchronous wrapper for one target (Celery tasks, tests). Must not be
    called from inside a running event loop."""
    return asyncio.run(probe_target(target, timeout))
