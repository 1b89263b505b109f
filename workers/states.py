"""Worker statuses, their groupings and the transition table. No Django
import: this is data, tested against a literal expected table.

The one place that says what "active", "terminal", "allocated" and "stale
candidate" mean, which status may follow which, and what a user sees.
"""

from enum import StrEnum

STARTING = "starting"
READY = "ready"
BUSY = "busy"
STOPPING = "stopping"
STOPPED = "stopped"
FAILED = "failed"

STATUSES = (STARTING, READY, BUSY, STOPPING, STOPPED, FAILED)
ACTIVE_STATUSES = frozenset({STARTING, READY, BUSY, STOPPING})
TERMINAL_STATUSES = frozenset({STOPPED, FAILED})
# Workers that count against the per-user limit, project GPU quotas, queue
# deserved limits and GPU capacity. A stopping worker was released by the
# control plane: counting it would let one failed stop block its owner.
ALLOCATED_STATUSES = frozenset({STARTING, READY, BUSY})
# Workers whose runtime should answer health probes.
PROBED_STATUSES = frozenset({READY, BUSY})

# from-status -> the statuses it may move to. Terminal statuses are final:
# starting again creates a new worker row (rows are the history).
TRANSITIONS: dict[str, frozenset[str]] = {
    STARTING: frozenset({READY, STOPPING, FAILED}),
    READY: frozenset({BUSY, STOPPING, FAILED}),
    BUSY: frozenset({READY, STOPPING, FAILED}),
    # Only a backend that confirms the runtime is gone ends a stop.
    STOPPING: frozenset({STOPPED}),
    STOPPED: frozenset(),
    FAILED: frozenset(),
}


def can_transition(from_status: str, to_status: str) -> bool:
    """Whether ``from_status -> to_status`` is an allowed transition."""
    return to_status in TRANSITIONS.get(from_status, frozenset())


# What a user sees for a workspace, derived from its current (newest) worker;
# ``None`` = the workspace never started.
class WorkspaceStatus(StrEnum):
    """What a user sees for a workspace (the list badge, the API's status)."""

    STOPPED = "Stopped"
    STARTING = "Starting"
    RUNNING = "Running"
    STOPPING = "Stopping"
    ERROR = "Error"


USER_STATE: dict[str | None, WorkspaceStatus] = {
    None: WorkspaceStatus.STOPPED,
    STARTING: WorkspaceStatus.STARTING,
    READY: WorkspaceStatus.RUNNING,
    BUSY: WorkspaceStatus.RUNNING,
    STOPPING: WorkspaceStatus.STOPPING,
    STOPPED: WorkspaceStatus.STOPPED,
    FAILED: WorkspaceStatus.ERROR,
}


def workspace_state(worker_status: str | None) -> WorkspaceStatus:
    """The user-facing workspace state for its current worker's status."""
    return USER_STATE[worker_status]


# Worker.next_action values: the next thing automation will do to a worker.
NEXT_IDLE_STOP = "idle stop"
NEXT_PLAN_WINDOW_STOP = "plan window stop"
NEXT_STOP_RETRY = "stop retry"
NEXT_START_TIMEOUT = "start timeout"

BACKENDS = ("local", "docker", "kubernetes", "external")
