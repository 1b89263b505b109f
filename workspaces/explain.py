"""Why a workspace is in Error or was stopped, in plain words.

Worker rows carry machine codes (``error_code``, from ``ErrorCode`` and the
worker services) and the reason of the transition that stopped them; users
see one sentence per category and what to do. Pure: no Django import.
"""

from __future__ import annotations

from dataclasses import dataclass

# Stop reasons written by automation (workers.services.preemption,
# workspaces.services, the idle reaper's "... (idle timeout)").
PLAN_WINDOW_EXPIRED = "Plan window expired"
PREEMPTED = "Preempted by higher-priority workload"
IDLE_MARK = "(idle timeout)"


@dataclass(frozen=True)
class Explanation:
    category: str
    text: str
    # The entry of the troubleshooting page (workspaces/troubleshooting.html)
    # that says more, by its anchor; "" when none does.
    help_anchor: str = ""


# Error codes -> the troubleshooting entry for them.
_HELP_ANCHORS = {
    "dependency_setup_failed": "dependency-setup-fails",
    "timeout": "workers-remain-starting",
    "gateway_unreachable": "runtime-unreachable",
}


_BY_CODE: dict[str, tuple[str, str]] = {
    "image_pull_failed": (
        "Image pull failure",
        "The image could not be pulled: it may not exist, or it is not in the "
        "project allowlist or the registry refused it. Pick an image from the "
        "allowlist, or ask a project manager.",
    ),
    "image_allowlist": (
        "Image not in allowlist",
        "The image is not in the project's allowlist; pick an allowed image.",
    ),
    "quota_exceeded": (
        "Insufficient quota",
        "The cluster refused the resources this workspace asked for (quota "
        "exceeded). Stop another workspace, pick a smaller resource class, or "
        "ask for more quota.",
    ),
    "device_class_unavailable": (
        "GPU device class unavailable",
        "The DRA device class for this GPU model is not available on the "
        "cluster right now. Pick another GPU model or ask an admin.",
    ),
    "unschedulable": (
        "Node scheduling failure",
        "No node could take this workspace (not enough free CPU, memory or "
        "GPUs, or no matching node). Try a smaller resource class or later.",
    ),
    "timeout": (
        "Start timeout",
        "The workspace did not become ready in time. Start it again; if it "
        "keeps happening, the image may be slow to start or broken.",
    ),
    "task_queue_unavailable": (
        "Task queue unavailable",
        "The platform's task queue was down, so the start never ran. Start it "
        "again in a minute.",
    ),
    "runtime_exited": (
        "Runtime exited",
        "The IDE process exited while starting. Check the image, or start it again.",
    ),
    "runtime_vanished": (
        "Runtime lost",
        "The runtime disappeared (its node or process went away). Start it again.",
    ),
    "gateway_unreachable": (
        "Runtime service unreachable",
        "The platform could not reach the service that runs workspaces. Start "
        "it again shortly, or ask an admin.",
    ),
    "dependency_setup_failed": (
        "Dependency setup failed",
        "Checking out the repository or installing its packages failed; the "
        "last lines of the setup log are below. Fix the repository URL, ref or "
        "requirements file, or ask an admin to check the package fetch policy, "
        "the private package index access and the dependency cache. Your files "
        "were left as they were.",
    ),
    "invalid_spec": (
        "Invalid workspace settings",
        "The runtime refused this workspace's settings. Ask an admin.",
    ),
}

_BY_STOP_REASON: dict[str, tuple[str, str]] = {
    PLAN_WINDOW_EXPIRED: (
        "Plan window expired",
        "The plan's schedule window closed, so the platform stopped this "
        "workspace. Start it inside the next window, or switch it to the "
        "default queue.",
    ),
    PREEMPTED: (
        "Preempted",
        "A higher-priority workload needed the GPUs, so this workspace in a "
        "preemptible queue was stopped. Start it again when capacity frees up.",
    ),
}

IDLE = (
    "Idle stop",
    "Nothing ran in this workspace for the idle period, so the idle reaper "
    "stopped it to free resources. Start it again; your files in mounted "
    "volumes are kept.",
)


def explain_error(code: str) -> Explanation:
    """The category and advice for a failed worker's ``error_code``."""
    if code.startswith("stop_"):
        return Explanation(
            "Stop failed",
            "Stopping the runtime failed; the platform keeps retrying. You can "
            "still delete the workspace.",
            troubleshooting_anchor(code),
        )
    category, text = _BY_CODE.get(
        code,
        (
            "Start failed",
            "The workspace could not start. Start it again; if it keeps "
            "failing, ask an admin with the details below.",
        ),
    )
    return Explanation(category, text, troubleshooting_anchor(code))


def troubleshooting_anchor(code: str) -> str:
    """The troubleshooting entry for a worker's ``error_code`` ("" if none)."""
    return "stop-fails" if code.startswith("stop_") else _HELP_ANCHORS.get(code, "")


def explain_stop(reason: str) -> Explanation | None:
    """Why automation stopped a workspace; None for a stop someone asked for."""
    if reason in _BY_STOP_REASON:
        return Explanation(*_BY_STOP_REASON[reason])
    if IDLE_MARK in reason:
        return Explanation(*IDLE)
    return None
