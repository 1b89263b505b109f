"""Readiness checks: can this process serve? Each check returns "" when
fine, else a short reason (sanitized: a connection error may echo a URL
with a password)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.db import connections

from workers.sanitize import sanitize

TIMEOUT_SECONDS = 2.0
log = logging.getLogger(__name__)


def check_database() -> str:
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        return sanitize(f"{type(exc).__name__}: {exc}", max_chars=300)
    return ""


def check_redis() -> str:
    """PING the Redis that carries channel layers, counters and the broker."""
    import redis

    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL,
            socket_timeout=TIMEOUT_SECONDS,
            socket_connect_timeout=TIMEOUT_SECONDS,
        )
        with client:
            client.ping()
    except Exception as exc:  # noqa: BLE001
        return sanitize(f"{type(exc).__name__}: {exc}", max_chars=300)
    return ""


def check_broker() -> str:
    """The task broker accepts a connection (kombu, whatever transport)."""
    from config.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=0, timeout=TIMEOUT_SECONDS)
    except Exception as exc:  # noqa: BLE001
        return sanitize(f"{type(exc).__name__}: {exc}", max_chars=300)
    return ""


def checks() -> dict[str, Callable[[], str]]:
    """The checks that apply here: Redis only when configured (embedded
    mode has none; its broker is in memory)."""
    found = {"database": check_database}
    if settings.REDIS_URL:
        found["redis"] = check_redis
    found["task_broker"] = check_broker
    return found


def readiness() -> dict[str, str]:
    """name -> "ok" or "unreachable"; the reason goes to the log only (the
    endpoint answers anyone, so it names dependencies, not their errors)."""
    results = {}
    for name, check in checks().items():
        reason = check()
        if reason:
            log.warning("not ready: %s unreachable: %s", name, reason)
        results[name] = "unreachable" if reason else "ok"
    return results
