"""Reading Kubernetes answers: a pod + its events become an Observation, an
API error becomes a BackendError. Pure functions over plain dicts."""

from __future__ import annotations

import json
from typing import Any

import urllib3
from kubernetes.client.exceptions import ApiException

from .base import BackendError, ErrorCode, Observation, Phase, describe_exit
from .kubernetes_gpu import mps_unavailable

# Waiting reasons that will not fix themselves: the start has failed.
FATAL_WAITING = {
    "ErrImagePull": ErrorCode.IMAGE_PULL_FAILED,
    "ImagePullBackOff": ErrorCode.IMAGE_PULL_FAILED,
    "InvalidImageName": ErrorCode.IMAGE_PULL_FAILED,
    "CreateContainerConfigError": ErrorCode.INVALID_SPEC,
}
MAX_EVENTS = 10
TRANSPORT_ERRORS = (urllib3.exceptions.HTTPError, OSError)
LISTED_PHASE = {
    "Pending": Phase.PENDING,
    "Running": Phase.RUNNING,
    "Succeeded": Phase.SUCCEEDED,
    "Failed": Phase.FAILED,
}


def error_from_api(exc: ApiException) -> BackendError:
    """Map an API error to a BackendError: 403 exceeded quota →
    QUOTA_EXCEEDED; a missing DeviceClass → DEVICE_CLASS_UNAVAILABLE; 400/422
    → INVALID_SPEC; 409 → CONFLICT; 429/5xx → GATEWAY_UNREACHABLE
    (retryable); anything else INTERNAL."""
    message = _status_message(exc)
    lowered = message.lower()
    if exc.status == 403 and "exceeded quota" in lowered:
        return BackendError(
            ErrorCode.QUOTA_EXCEEDED,
            f"{message}; stop a workspace in the runtime namespace or ask an "
            "admin to raise its ResourceQuota",
        )
    if "no priorityclass with name" in lowered:
        return BackendError(
            ErrorCode.PRIORITY_CLASS_MISSING,
            f"{message}; create the queues' PriorityClasses with "
            "`manage.py kube_sync_priority_classes` (run at every deploy)",
        )
    if "violates podsecurity" in lowered:
        return BackendError(
            ErrorCode.INVALID_SPEC,
            f"{message}; a root shell needs the runtime namespace at Pod "
            "Security level baseline (see deploy/kubernetes), or turn root off",
        )
    if "deviceclass" in lowered and (
        "not found" in lowered or "does not exist" in lowered
    ):
        return BackendError(ErrorCode.DEVICE_CLASS_UNAVAILABLE, message)
    if exc.status in (400, 422):
        return BackendError(ErrorCode.INVALID_SPEC, message)
    if exc.status == 409:
        return BackendError(ErrorCode.CONFLICT, message)
    if exc.status == 429 or (exc.status or 0) >= 500:
        return BackendError(
            ErrorCode.GATEWAY_UNREACHABLE,
            f"Kubernetes API answered {exc.status}: {message}",
            retryable=True,
        )
    return BackendError(
        ErrorCode.INTERNAL, f"Kubernetes API answered {exc.status}: {message}"
    )


def unreachable(exc: Exception) -> BackendError:
    return BackendError(
        ErrorCode.GATEWAY_UNREACHABLE,
        f"Kubernetes API unreachable: {exc}",
        retryable=True,
    )


def _status_message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "{}").get("message") or exc.reason)
    except (ValueError, AttributeError):
        return str(exc.body or exc.reason)


def event_lines(events: list[dict[str, Any]]) -> tuple[str, ...]:
    """The last events, oldest first, as "Reason: message" start progress."""

    def when(event: dict) -> str:
        return (
            event.get("lastTimestamp")
            or event.get("eventTime")
            or event.get("metadata", {}).get("creationTimestamp")
            or ""
        )

    ordered = sorted(events, key=when)[-MAX_EVENTS:]
    return tuple(f"{e.get('reason', '')}: {e.get('message', '')}" for e in ordered)


def _scheduling_error(pod: dict, events: list[dict]) -> tuple[ErrorCode, str] | None:
    texts = [
        c.get("message", "")
        for c in pod.get("status", {}).get("conditions", [])
        if c.get("reason") == "Unschedulable"
    ]
    texts += [
        e.get("message", "") for e in events if e.get("reason") == "FailedScheduling"
    ]
    texts += [
        e.get("message", "")
        for e in events
        if e.get("reason") == "FailedPrepareDynamicResources"
        and mps_unavailable(e.get("message", ""))
    ]
    for text in texts:
        lowered = text.lower()
        if mps_unavailable(text):
            return ErrorCode.DEVICE_CLASS_UNAVAILABLE, (
                f"GPU sharing (MPS) is not available on the node: {text}; the "
                "NVIDIA DRA driver needs its MPSSupport feature gate"
            )
        if "deviceclass" in lowered or "device class" in lowered:
            return ErrorCode.DEVICE_CLASS_UNAVAILABLE, text
    return (ErrorCode.UNSCHEDULABLE, texts[-1]) if texts else None


def _waiting(pod: dict) -> tuple[str, str]:
    for status in pod.get("status", {}).get("containerStatuses", []) or []:
        waiting = (status.get("state") or {}).get("waiting")
        if waiting:
            return waiting.get("reason", ""), waiting.get("message", "")
    return "", ""


def _ready(pod: dict) -> bool:
    statuses = pod.get("status", {}).get("containerStatuses", []) or []
    return bool(statuses) and all(s.get("ready") for s in statuses)


def observation_from_pod(pod: dict, events: list[dict], endpoint: str) -> Observation:
    """Pending pods report their blocker: fatal waiting reasons (image pull)
    and a missing DeviceClass are FAILED with a code; Unschedulable stays
    PENDING with a code (capacity may free up; the start timeout decides)."""
    phase = pod.get("status", {}).get("phase", "Pending")
    lines = event_lines(events)
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return Observation(Phase.TERMINATING, "", "pod terminating", lines)
    if phase == "Running":
        if _ready(pod):
            return Observation(Phase.RUNNING, endpoint, "ready", lines)
        return Observation(Phase.PENDING, endpoint, "container not ready yet", lines)
    if phase in ("Succeeded", "Failed"):
        reason = pod.get("status", {}).get("reason") or phase
        message = pod.get("status", {}).get("message") or f"pod {phase.lower()}"
        return Observation(Phase(phase.lower()), "", f"{reason}: {message}", lines)
    reason, message = _waiting(pod)
    if reason in FATAL_WAITING:
        return Observation(
            Phase.FAILED,
            "",
            f"{reason}: {message}",
            lines,
            error_code=FATAL_WAITING[reason],
        )
    blocked = _scheduling_error(pod, events)
    if blocked:
        code, text = blocked
        phase_now = (
            Phase.FAILED
            if code is ErrorCode.DEVICE_CLASS_UNAVAILABLE
            else (Phase.PENDING)
        )
        return Observation(phase_now, "", text, lines, error_code=code)
    return Observation(Phase.PENDING, "", lines[-1] if lines else "pod pending", lines)


def listed_phase(pod: dict) -> tuple[Phase, str, int | None]:
    """(phase, message, exit code) of a pod from a LIST answer; the exit
    code is the first terminated container's."""
    status = pod.get("status") or {}
    phase = LISTED_PHASE.get(status.get("phase", "Pending"), Phase.UNKNOWN)
    if (pod.get("metadata") or {}).get("deletionTimestamp") and phase not in (
        Phase.SUCCEEDED,
        Phase.FAILED,
    ):
        return Phase.TERMINATING, "pod terminating", None
    if phase not in (Phase.SUCCEEDED, Phase.FAILED):
        return phase, "", None
    code = _exit_code(pod)
    return phase, f"pod {phase}, {describe_exit(code)}", code


def _exit_code(pod: dict) -> int | None:
    for status in pod.get("status", {}).get("containerStatuses", []) or []:
        terminated = (status.get("state") or {}).get("terminated")
        if terminated and terminated.get("exitCode") is not None:
            return int(terminated["exitCode"])
    return None
