"""Counters and histograms that Celery tasks update and any web process
reads: in Redis when REDIS_URL is set (shared by every process on every
host, one pipelined round trip per task), else in this process's memory
(embedded mode: the task worker is a thread of the web process).

Used for what happens inside tasks and leaves no row behind: task outcomes
and durations, reconcile runs and the time of the last successful one.
A Redis restart resets them, which Prometheus reads as a counter reset.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import defaultdict
from collections.abc import Iterable

from django.conf import settings

log = logging.getLogger(__name__)

KEY = "notebook_fleet:metrics"
_memory: dict[str, float] = defaultdict(float)
_memory_lock = threading.Lock()
_client_lock = threading.Lock()
_clients: dict[str, object] = {}


def _client():
    """One redis-py client per URL (its pool is thread-safe); None = memory."""
    url = settings.REDIS_URL
    if not url:
        return None
    with _client_lock:
        if url not in _clients:
            import redis

            _clients[url] = redis.Redis.from_url(
                url, socket_timeout=2, socket_connect_timeout=2
            )
        return _clients[url]


def field(name: str, labels: dict[str, str]) -> str:
    """The hash field of one series: ``name`` and its labels as JSON."""
    return json.dumps([name, sorted(labels.items())], separators=(",", ":"))


def parse_field(raw: str | bytes) -> tuple[str, dict[str, str]]:
    name, labels = json.loads(raw)
    return name, dict(labels)


def add(updates: Iterable[tuple[str, dict[str, str], float]]) -> None:
    """Add each ``(name, labels, amount)``; never raises (metrics must not
    break the task that reports them)."""
    updates = list(updates)
    client = _client()
    if client is None:
        with _memory_lock:
            for name, labels, amount in updates:
                _memory[field(name, labels)] += amount
        return
    try:
        pipe = client.pipeline(transaction=False)
        for name, labels, amount in updates:
            pipe.hincrbyfloat(KEY, field(name, labels), amount)
        pipe.execute()
    except Exception:  # noqa: BLE001 - a metric lost, never a task failed
        log.warning("shared metrics not recorded", exc_info=True)


def set_max(name: str, labels: dict[str, str], value: float) -> None:
    """Raise a gauge to ``value`` unless it is higher already (a timestamp
    of the last success, written by whichever process succeeded)."""
    key = field(name, labels)
    client = _client()
    if client is None:
        with _memory_lock:
            _memory[key] = max(_memory.get(key, 0.0), value)
        return
    try:
        client.eval(_SET_MAX, 1, KEY, key, repr(value))
    except Exception:  # noqa: BLE001 - as in add()
        log.warning("shared metrics not recorded", exc_info=True)


_SET_MAX = """
local old = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) > old then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
"""


def read_all() -> dict[str, float]:
    """Every series (field -> value); empty when Redis cannot be read."""
    client = _client()
    if client is None:
        with _memory_lock:
            return dict(_memory)
    try:
        raw = client.hgetall(KEY)
    except Exception:  # noqa: BLE001 - a scrape without them, not a 500
        log.warning("shared metrics not read", exc_info=True)
        return {}
    return {k.decode(): float(v) for k, v in raw.items()}


def reset() -> None:
    """Forget every series (tests)."""
    client = _client()
    if client is None:
        with _memory_lock:
            _memory.clear()
    else:
        client.delete(KEY)
