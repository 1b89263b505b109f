"""One contract, every backend (see conftest for what is real in each)."""

from __future__ import annotations

import json
import time

import pytest

from tests.backends.conftest import TOKEN, Harness, wait_for_phase
from workers.backends.base import BackendError, ErrorCode, Phase, RuntimeRef
from workers.probe import Health, ProbeTarget, probe_one

START_TIMEOUT = 90.0


def test_it_runs_the_whole_lifecycle(harness: Harness):
    backend = harness.backend
    spec = harness.spec()
    ref = backend.launch(spec)
    try:
        assert ref.worker_id == spec.worker_id
        harness.drive_running(spec, ref)
        observation = wait_for_phase(
            backend, ref, {Phase.RUNNING, Phase.FAILED}, START_TIMEOUT
        )
        assert observation.phase == Phase.RUNNING, (observation, backend.logs(ref))
        assert observation.endpoint.endswith(spec.base_url)

        result = probe_one(ProbeTarget(observation.endpoint, token=TOKEN), timeout=5)
        assert result.health == Health.READY, result
        assert result.last_activity is not None

        again = backend.launch(spec)
        assert again.name == ref.name
        managed = [r for r in backend.list_managed() if r.worker_id == spec.worker_id]
        assert len(managed) == 1

        stored = json.dumps(ref.to_json())
        rebuilt = harness.rebuild()
        restored = RuntimeRef.from_json(stored)
        assert restored == ref
        assert rebuilt.observe(restored).phase == Phase.RUNNING

        with harness.outage() as unreachable:
            assert unreachable.observe(restored).phase == Phase.UNKNOWN
        assert backend.observe(ref).phase == Phase.RUNNING

        rebuilt.terminate(restored)
        # Removal may take a grace period (a Kubernetes pod): TERMINATING,
        # never RUNNING, until it is gone.
        assert backend.observe(ref).phase in {Phase.TERMINATING, Phase.NOT_FOUND}
        gone = wait_for_phase(backend, ref, {Phase.NOT_FOUND}, START_TIMEOUT)
        assert gone.phase == Phase.NOT_FOUND
        rebuilt.terminate(restored)  # already gone: still fine
        assert spec.worker_id not in {r.worker_id for r in backend.list_managed()}
    finally:
        backend.terminate(ref)


def test_it_lists_a_killed_runtime_as_stopped_with_its_exit_code(harness: Harness):
    """A runtime SIGKILLed behind the backend's back stays listed, as
    stopped, with how it ended, until terminate removes it: reconcile acts
    on that (a listed runtime is not a running one)."""
    if harness.kill is None:
        # Only the opt-in real-cluster harness: it never kills a pod behind
        # a real cluster's back. Every backend run in CI has a kill.
        pytest.skip(f"{harness.name}: does not kill runtimes on a real cluster")
    backend = harness.backend
    spec = harness.spec()
    ref = backend.launch(spec)
    try:
        harness.drive_running(spec, ref)
        observation = wait_for_phase(
            backend, ref, {Phase.RUNNING, Phase.FAILED}, START_TIMEOUT
        )
        assert observation.phase == Phase.RUNNING, (observation, backend.logs(ref))
        assert _listed(backend, spec.worker_id).phase == Phase.RUNNING

        harness.kill(ref)
        listed = _wait_listed_exit(backend, spec.worker_id)
        assert listed.stopped, listed
        assert listed.exit_code == 137, listed
        assert "137 (SIGKILL)" in listed.message
        assert backend.observe(ref).phase == Phase.FAILED

        backend.terminate(ref)
        assert spec.worker_id not in {r.worker_id for r in backend.list_managed()}
    finally:
        backend.terminate(ref)


def _listed(backend, worker_id: str):
    return next(r for r in backend.list_runtimes() if r.ref.worker_id == worker_id)


def _wait_listed_exit(backend, worker_id: str, timeout: float = 30.0):
    """The worker's list entry once it shows an exit code (a functional
    wait: the process is reaped and its code recorded a moment after it
    dies), or the last entry seen."""
    deadline = time.monotonic() + timeout
    listed = _listed(backend, worker_id)
    while listed.exit_code is None and time.monotonic() < deadline:
        time.sleep(0.2)
        listed = _listed(backend, worker_id)
    return listed


def test_it_observes_an_unknown_worker_as_not_found(harness: Harness):
    spec = harness.spec()
    ref = RuntimeRef(
        harness.backend.name,
        spec.worker_id,
        f"nbf-{spec.worker_id}",
        namespace="notebooks",
    )
    assert harness.backend.observe(ref).phase == Phase.NOT_FOUND
    harness.backend.terminate(ref)
    assert harness.backend.logs(ref) == ""


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"image": "Bad Image!!"}, "image"),
        ({"mounts_path": "/data/../etc"}, "'..'"),
        ({"cpu_limit_millicores": -1}, "negative"),
        ({"memory_limit_bytes": -5}, "negative"),
        ({"base_url": "/elsewhere/"}, "base URL"),
        ({"environment": {"JUPYTER_TOKEN": "x"}}, "set by the platform"),
    ],
)
def test_it_rejects_bad_specs_before_touching_anything(harness: Harness, change, words):
    from dataclasses import replace

    from workers.backends.base import Mount

    spec = harness.spec()
    if "mounts_path" in change:
        spec = replace(spec, mounts=(Mount("data", change["mounts_path"]),))
    elif "cpu_limit_millicores" in change or "memory_limit_bytes" in change:
        spec = replace(spec, resources=replace(spec.resources, **change))
    else:
        spec = replace(spec, **change)
    with pytest.raises(BackendError) as raised:
        harness.backend.launch(spec)
    assert raised.value.code == ErrorCode.INVALID_SPEC
    assert words in raised.value.message
    assert spec.worker_id not in {r.worker_id for r in harness.backend.list_managed()}


def test_it_round_trips_a_ref_through_json(harness: Harness):
    ref = RuntimeRef(
        harness.backend.name,
        "w1",
        "nbf-w1",
        "ns",
        extra={"port": 8888, "labels": {"a": "b"}},
    )
    assert RuntimeRef.from_json(json.dumps(ref.to_json())) == ref
    assert RuntimeRef.from_json(ref.to_json()) == ref
