"""Worker services: every write to workers goes through here.

Re-exports the interface other apps call; the modules split it by concern
(transitions, launch, start, stop, probe, reapers, reconcile).
"""

from workers.services.errors import LaunchRefused, gpu_text
from workers.services.launch import LaunchLimits, LaunchRequest, worker_launch
from workers.services.probing import worker_probe_now, workers_probe
from workers.services.reapers import workers_cleanup_stale, workers_reap_idle
from workers.services.reconcile import workers_reconcile
from workers.services.relaunch import worker_start_again
from workers.services.starting import worker_start_run
from workers.services.stopping import (
    StopOutcome,
    worker_request_stop,
    worker_retry_stop,
    worker_stop_run,
    workers_request_stop,
)
from workers.services.transitions import (
    InvalidTransition,
    worker_record_event,
    worker_transition,
    workers_transition,
)

__all__ = [
    "InvalidTransition",
    "LaunchLimits",
    "LaunchRefused",
    "LaunchRequest",
    "StopOutcome",
    "gpu_text",
    "worker_launch",
    "worker_probe_now",
    "worker_record_event",
    "worker_request_stop",
    "worker_retry_stop",
    "worker_start_again",
    "worker_start_run",
    "worker_stop_run",
    "worker_transition",
    "workers_cleanup_stale",
    "workers_probe",
    "workers_reap_idle",
    "workers_reconcile",
    "workers_request_stop",
    "workers_transition",
]
