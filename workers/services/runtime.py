"""How services reach backends and health probes: one seam each.

Services call ``runtime.backend_for`` and ``runtime.probe`` through this
module so tests (and the embedded demo) can install fakes in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from workers.backends.base import (
    BackendError,
    ErrorCode,
    Observation,
    Phase,
    RuntimeBackend,
)
from workers.probe import Health

_backend_overrides: dict[str, RuntimeBackend] = {}
_probe_override: list[Callable] = []


@dataclass(frozen=True)
class HealthReport:
    """What one probe of a runtime's endpoint found."""

    health: Health
    latency_ms: int | None = None
    last_activity: datetime | None = None
    busy: bool = False
    message: str = ""


def backend_for(name: str) -> RuntimeBackend:
    """The backend called ``name``; an installed override wins."""
    if name in _backend_overrides:
        return _backend_overrides[name]
    from workers.backends.registry import get_backend

    return get_backend(name)


def backend_unavailable_reason(name: str) -> str:
    """Why backend ``name`` cannot be used here, or "" (an override can)."""
    if name in _backend_overrides:
        return ""
    from workers.backends.registry import unavailable_reason

    return unavailable_reason(name)


def override_backend(name: str, backend: RuntimeBackend | None) -> None:
    """Install (or with ``None`` remove) a backend for ``name``: tests, demo."""
    if backend is None:
        _backend_overrides.pop(name, None)
    else:
        _backend_overrides[name] = backend


def override_probe(probe_many: Callable | None) -> None:
    """Install ``probe_many(workers) -> list[HealthReport]`` or remove it."""
    _probe_override.clear()
    if probe_many is not None:
        _probe_override.append(probe_many)


def probe(workers: Sequence) -> list[HealthReport]:
    """Probe each worker's endpoint concurrently; one report per worker, in
    order. Never raises for an unreachable runtime."""
    if _probe_override:
        return list(_probe_override[0](workers))
    from workers.services.probing import probe_endpoints

    return probe_endpoints(workers)


def observe_safely(backend: RuntimeBackend, ref) -> Observation:
    """``backend.observe`` that never raises: a backend breaking the
    contract reads as UNKNOWN (could not tell), never as gone."""
    try:
        return backend.observe(ref)
    except Exception as exc:  # noqa: BLE001 - contract says never raises
        return Observation(phase=Phase.UNKNOWN, message=f"observe raised: {exc}")


def as_backend_error(exc: Exception) -> BackendError:
    """Any exception from a backend call as a ``BackendError``; unexpected
    ones (timeouts, connection resets) count as retryable."""
    if isinstance(exc, BackendError):
        return exc
    return BackendError(
        ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}", retryable=True
    )
