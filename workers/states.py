"""Worker statuses and their groupings. No Django import: this is data.

The one place that says what "active", "terminal" and "stale candidate" mean.
"""

STARTING = "starting"
READY = "ready"
BUSY = "busy"
STOPPING = "stopping"
STOPPED = "stopped"
FAILED = "failed"

STATUSES = (STARTING, READY, BUSY, STOPPING, STOPPED, FAILED)
ACTIVE_STATUSES = frozenset({STARTING, READY, BUSY, STOPPING})
TERMINAL_STATUSES = frozenset({STOPPED, FAILED})
# "Stale" = one of these for longer than its configured threshold.
STALE_CANDIDATE_STATUSES = frozenset({STARTING, BUSY})
# Workers that hold capacity (count against limits and quotas).
HOLDING_STATUSES = ACTIVE_STATUSES

BACKENDS = ("local", "docker", "kubernetes", "external")
HEALTHS = ("ready", "starting", "error", "unreachable")
