"""Fault-injecting fakes for the runtime backend and the health probe.

``FakeBackend`` implements ``RuntimeBackend`` in memory (or in a JSON file,
so a Celery worker subprocess and the test share it). Each failure mode is a
switch: calls that raise, time out or answer UNKNOWN; runtimes that never
get ready, vanish, or survive ``terminate``; every call is counted.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
from collections import Counter
from pathlib import Path

from workers.backends.base import (
    BackendError,
    ErrorCode,
    LaunchSpec,
    ListedRuntime,
    Observation,
    Phase,
    RuntimeBackend,
    RuntimeRef,
)
from workers.services.runtime import HealthReport


class FakeBackend(RuntimeBackend):
    """Runtimes as records ``{worker_id: {"name", "phase", "observes"}}``.

    ``faults[method]`` is an exception raised by every call of ``method``
    ("launch", "observe", "terminate", "list_runtimes") until cleared;
    ``unknown`` makes ``observe`` answer UNKNOWN; ``pending_observes`` is
    how many observes a new runtime stays PENDING; ``sticky`` makes
    ``terminate`` succeed without removing anything.
    """

    name = "local"

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else None
        self._lock = threading.RLock()
        self._memory: dict = {"runtimes": {}, "calls": {}, "faults": {}, "flags": {}}
        if self.path and not self.path.exists():
            self._write(self._memory)

    # --- storage: one dict, in memory or in a locked JSON file -------------

    def _read(self) -> dict:
        if not self.path:
            return self._memory
        return json.loads(self.path.read_text())

    def _write(self, state: dict) -> None:
        if self.path:
            # Readers outside the lock (a test polling ``calls``) must never
            # see a half-written file: write aside, then rename over it.
            partial = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
            partial.write_text(json.dumps(state))
            os.replace(partial, self.path)
        else:
            self._memory = state

    @contextlib.contextmanager
    def _state(self):
        with self._lock:
            if not self.path:
                yield self._memory
                return
            with open(f"{self.path}.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                state = self._read()
                yield state
                self._write(state)

    def _call(self, method: str) -> dict:
        """Count a call and raise its injected fault, if any."""
        with self._state() as state:
            state["calls"][method] = state["calls"].get(method, 0) + 1
            fault = state["faults"].get(method)
        if fault:
            raise _as_exception(fault)
        return state

    # --- switches -------------------------------------------------------------

    def fail(self, method: str, kind: str = "error", message: str = "injected") -> None:
        """Make ``method`` raise: kind "error" (BackendError), "retryable",
        "timeout" (TimeoutError)."""
        with self._state() as state:
            state["faults"][method] = [kind, message]

    def reset(self) -> None:
        """Forget every runtime, fault and count."""
        with self._state() as state:
            for key in ("runtimes", "calls", "faults", "flags"):
                state[key] = {}

    def clear_flag(self, name: str) -> None:
        with self._state() as state:
            state["flags"].pop(name, None)

    def heal(self) -> None:
        with self._state() as state:
            state["faults"] = {}
            state["flags"] = {}

    def set_flag(self, name: str, value) -> None:
        with self._state() as state:
            state["flags"][name] = value

    def lose(self, worker_id) -> None:
        """The runtime disappears behind our back (node died, OOM)."""
        with self._state() as state:
            state["runtimes"].pop(str(worker_id), None)

    def crash(self, worker_id, exit_code: int = 137) -> None:
        """The runtime stops but stays listed (a killed process, an exited
        container, a failed pod) until terminated."""
        with self._state() as state:
            runtime = state["runtimes"][str(worker_id)]
            runtime["phase"] = str(Phase.FAILED)
            runtime["exit_code"] = exit_code

    def add_runtime(self, worker_id) -> dict:
        """A RUNNING runtime for ``worker_id`` (an orphan if no worker claims
        it); returns its ref as stored on a worker row."""
        with self._state() as state:
            state["runtimes"][str(worker_id)] = _record(
                str(worker_id), Phase.RUNNING, 0
            )
        return self._ref(str(worker_id)).to_json()

    def exists(self, worker_id) -> bool:
        return str(worker_id) in self._read()["runtimes"]

    def runtime_ids(self) -> set[str]:
        return set(self._read()["runtimes"])

    @property
    def calls(self) -> Counter:
        return Counter(self._read()["calls"])

    # --- the contract -----------------------------------------------------------

    def launch(self, spec: LaunchSpec) -> RuntimeRef:
        self._call("launch")
        with self._state() as state:
            runtime = state["runtimes"].get(spec.worker_id)
            if runtime is None:
                pending = int(state["flags"].get("pending_observes", 0))
                runtime = _record(spec.worker_id, Phase.PENDING, pending)
                state["runtimes"][spec.worker_id] = runtime
                state.setdefault("specs", {})[spec.worker_id] = spec.to_json()
        return self._ref(spec.worker_id)

    def observe(self, ref: RuntimeRef) -> Observation:
        state = self._call("observe")
        if state["flags"].get("unknown"):
            return Observation(phase=Phase.UNKNOWN, message="API timed out")
        with self._state() as state:
            runtime = state["runtimes"].get(ref.worker_id)
            if runtime is None:
                return Observation(phase=Phase.NOT_FOUND)
            if runtime["phase"] == Phase.PENDING:
                if runtime["observes"] <= 0 and not state["flags"].get("never_ready"):
                    runtime["phase"] = Phase.RUNNING
                runtime["observes"] -= 1
            phase = runtime["phase"]
        endpoint = f"http://fake/{ref.worker_id}/" if phase == Phase.RUNNING else ""
        return Observation(phase=Phase(phase), endpoint=endpoint)

    def terminate(self, ref: RuntimeRef) -> None:
        self._call("terminate")
        with self._state() as state:
            if not state["flags"].get("sticky"):
                state["runtimes"].pop(ref.worker_id, None)

    def list_runtimes(self) -> list[ListedRuntime]:
        self._call("list_runtimes")
        return [
            ListedRuntime(
                self._ref(worker_id),
                Phase(runtime["phase"]),
                f"exit code {runtime.get('exit_code')}",
                runtime.get("exit_code"),
            )
            for worker_id, runtime in self._read()["runtimes"].items()
        ]

    def logs(self, ref: RuntimeRef, tail: int = 100) -> str:
        return ""

    def _ref(self, worker_id: str) -> RuntimeRef:
        return RuntimeRef(
            backend="local", worker_id=worker_id, name=f"fake-{worker_id[:8]}"
        )


def _record(worker_id: str, phase: str, pending: int) -> dict:
    return {"name": f"fake-{worker_id[:8]}", "phase": str(phase), "observes": pending}


def _as_exception(fault) -> Exception:
    kind, message = fault
    if kind == "timeout":
        return TimeoutError(message)
    return BackendError(ErrorCode.INTERNAL, message, retryable=kind == "retryable")


class FakeProbe:
    """Probes answered from the fake backend: a RUNNING runtime is ready
    (busy if its id is in ``busy``), anything else unreachable."""

    def __init__(self, backend: FakeBackend):
        self.backend = backend
        self.busy: set[str] = set()
        self.down: set[str] = set()
        self.activity: dict[str, object] = {}
        self.calls = 0

    def __call__(self, workers) -> list[HealthReport]:
        self.calls += 1
        runtimes = self.backend._read()["runtimes"]
        return [self._report(str(w.id), runtimes) for w in workers]

    def _report(self, worker_id: str, runtimes: dict) -> HealthReport:
        runtime = runtimes.get(worker_id)
        if (
            runtime is None
            or runtime["phase"] != Phase.RUNNING
            or worker_id in self.down
        ):
            return HealthReport(health="unreachable")
        return HealthReport(
            health="ready",
            latency_ms=3,
            busy=worker_id in self.busy,
            last_activity=self.activity.get(worker_id),
        )


class TaskRecorder:
    """Stands in for the broker: records ``(task_name, worker_id)`` sends so a
    test runs them when it wants (or loses them, or runs them twice)."""

    def __init__(self):
        self.sent: list[tuple[str, str]] = []
        self.broken = False
        self._lock = threading.Lock()

    def __call__(self, task, worker_id: str) -> None:
        task_name = task.__name__  # the Celery task object's function name
        if self.broken:
            raise ConnectionError(
                "Error 111 connecting to 127.0.0.1:6379. Connection refused."
            )
        with self._lock:
            self.sent.append((task_name, worker_id))

    def take(self) -> list[tuple[str, str]]:
        with self._lock:
            sent, self.sent = self.sent, []
        return sent

    def run_all(self) -> int:
        """Run every recorded task (and the ones they send) to completion."""
        from workers import services

        count = 0
        while batch := self.take():
            for task_name, worker_id in batch:
                count += 1
                if task_name == "start_worker":
                    services.worker_start_run(worker_id=worker_id)
                else:
                    services.worker_stop_run(worker_id=worker_id)
        return count


class Fleet:
    """What a lifecycle test drives: the fakes, the recorded tasks, a clock."""

    def __init__(
        self, backend: FakeBackend, probe: FakeProbe, tasks: TaskRecorder, clock
    ):
        self.backend = backend
        self.probe = probe
        self.tasks = tasks
        self.clock = clock
        self.on_sleep = None  # called after each simulated sleep

    def sleep(self, seconds: float) -> None:
        self.clock.shift(seconds)
        if self.on_sleep is not None:
            self.on_sleep()


@contextlib.contextmanager
def installed_fleet(monkeypatch, backend: FakeBackend | None = None):
    """Install fakes for backend, probe, broker and sleep (sleep moves the
    frozen clock forward instead of waiting)."""
    import time_machine
    from django.utils import timezone

    from workers.services import queueing, runtime, starting

    backend = backend or FakeBackend()
    probe = FakeProbe(backend)
    tasks = TaskRecorder()
    with time_machine.travel(timezone.now(), tick=True) as clock:
        runtime.override_backend("local", backend)
        runtime.override_probe(probe)
        monkeypatch.setattr(queueing, "_send", tasks)
        fleet = Fleet(backend, probe, tasks, clock)
        monkeypatch.setattr(starting, "sleep", fleet.sleep)
        try:
            yield fleet
        finally:
            runtime.override_backend("local", None)
            runtime.override_probe(None)
