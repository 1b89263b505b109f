"""The only writer of a worker's status.

A transition is a conditional UPDATE on the expected old status (zero rows =
someone else got there first), one ``WorkerEvent`` per worker moved, and a
live-update publish once the transaction commits.
"""

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from workers import states
from workers.models import EventKind, Worker, WorkerEvent
from workers.realtime import publish_worker_changed
from workers.sanitize import sanitize, sanitize_data

CHUNK = 2000


class InvalidTransition(ValueError):
    """A caller asked for a move the transition table forbids (a bug)."""


def _expected_tuple(expected: str | Iterable[str]) -> tuple[str, ...]:
    return (expected,) if isinstance(expected, str) else tuple(expected)


def _check_table(expected: Sequence[str], to: str) -> None:
    for from_status in expected:
        if not states.can_transition(from_status, to):
            raise InvalidTransition(f"{from_status} -> {to} is not allowed")


def _automatic_fields(to: str, now) -> dict[str, Any]:
    """Timestamps and bookkeeping every move to ``to`` implies."""
    values: dict[str, Any] = {"status": to, "status_changed_at": now}
    if to in states.TERMINAL_STATUSES:
        values.update(stopped_at=now, next_action="", next_action_at=None)
    if to == states.STOPPING:
        # Whoever asks for the stop (a user, a reaper, preemption, a plan
        # window), the idle stop or window stop planned before is moot.
        values.update(next_action="", next_action_at=None)
    if to in (states.READY, states.BUSY, states.STOPPING, states.STOPPED):
        values.update(error_code="", error_detail="")
    return values


def worker_transition(
    *,
    worker_id,
    expected: str | Iterable[str],
    to: str,
    actor_type: str,
    actor=None,
    actor_label: str = "",
    reason: str = "",
    fields: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
) -> bool:
    """Move one worker from one of ``expected`` to ``to``.

    Returns False (and writes nothing) when the worker is not in an expected
    status. ``fields`` are extra columns set in the same UPDATE;
    ``error_detail`` and ``gateway_metadata`` among them are sanitized (with
    the worker's token), as are ``reason`` and ``data``. Raises
    ``InvalidTransition`` for a move the table forbids.
    """
    moved = workers_transition(
        worker_ids=[worker_id],
        expected=expected,
        to=to,
        actor_type=actor_type,
        actor=actor,
        actor_label=actor_label,
        reason=reason,
        fields=fields,
        data=data,
    )
    return bool(moved)


def workers_transition(
    *,
    worker_ids: Iterable,
    expected: str | Iterable[str],
    to: str,
    actor_type: str,
    actor=None,
    actor_label: str = "",
    reason: str = "",
    fields: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
) -> list:
    """``worker_transition`` for many workers at once (reapers, reconcile):
    a few queries per chunk of ids, never one per worker. Returns the ids
    that moved."""
    expected_statuses = _expected_tuple(expected)
    _check_table(expected_statuses, to)
    ids = list(worker_ids)
    moved: list = []
    for start in range(0, len(ids), CHUNK):
        with transaction.atomic():
            moved += _transition_chunk(
                ids[start : start + CHUNK],
                expected_statuses,
                to,
                event=dict(
                    actor_type=actor_type,
                    actor=actor,
                    actor_label=actor_label,
                    reason=reason,
                ),
                fields=fields or {},
                data=data or {},
            )
    return moved


def _transition_chunk(ids, expected, to, *, event, fields, data) -> list:
    rows = list(
        Worker.objects.select_for_update()
        .filter(id__in=ids, status__in=expected)
        .values_list("id", "status", "owner_id", "access_token")
    )
    if not rows:
        return []
    now = timezone.now()
    tokens = tuple(token for *_, token in rows if token)
    values = _sanitized({**_automatic_fields(to, now), **fields, "status": to}, tokens)
    locked = [row[0] for row in rows]
    Worker.objects.filter(id__in=locked, status__in=expected).update(**values)
    # One reason for the whole chunk, so it is cleaned of every token in it
    # (a reason naming another worker's token is redacted too).
    event = {**event, "reason": sanitize(event["reason"], extra_secrets=tokens)}
    clean_data = sanitize_data(data, extra_secrets=tokens)
    WorkerEvent.objects.bulk_create(
        WorkerEvent(
            worker_id=worker_id,
            at=now,
            kind=EventKind.TRANSITION,
            from_status=from_status,
            to_status=to,
            data=clean_data,
            **event,
        )
        for worker_id, from_status, *_ in rows
    )
    _publish_on_commit([(row[0], row[2]) for row in rows])
    return locked


def _sanitized(values: dict[str, Any], tokens: tuple[str, ...]) -> dict[str, Any]:
    """``values`` with the descriptive columns that may echo a secret
    sanitized. Working values (``endpoint``, ``runtime_ref``) are stored as
    given, or probes and stops would break; pages redact them on display."""
    if "error_detail" in values:
        values["error_detail"] = sanitize(values["error_detail"], extra_secrets=tokens)
    if "gateway_metadata" in values:
        values["gateway_metadata"] = sanitize_data(
            values["gateway_metadata"], extra_secrets=tokens
        )
    return values


def _publish_on_commit(pairs: list[tuple[Any, Any]]) -> None:
    def publish() -> None:
        for worker_id, owner_id in pairs:
            publish_worker_changed(worker_id, owner_id)

    transaction.on_commit(publish)


def worker_record_event(
    *,
    worker_id,
    kind: str,
    actor_type: str,
    reason: str,
    actor=None,
    actor_label: str = "",
    data: dict[str, Any] | None = None,
    publish_owner_id=None,
) -> None:
    """Append a non-transition event (progress, action, automation, error).

    ``reason`` and ``data`` are sanitized, with the worker's own access token
    among the secrets (a backend error may echo it). With
    ``publish_owner_id`` open pages are told once the event commits.
    """
    token = (
        Worker.objects.filter(id=worker_id)
        .values_list("access_token", flat=True)
        .first()
    )
    secrets = (token,) if token else ()
    WorkerEvent.objects.create(
        worker_id=worker_id,
        kind=kind,
        actor_type=actor_type,
        actor=actor,
        actor_label=actor_label,
        reason=sanitize(reason, extra_secrets=secrets),
        data=sanitize_data(data or {}, extra_secrets=secrets),
    )
    if publish_owner_id is not None:
        _publish_on_commit([(worker_id, publish_owner_id)])
