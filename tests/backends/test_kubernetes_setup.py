"""The kubernetes backend's setup step over HTTP against FakeKubeAPI: the
pod carries the init container, the worker's Secret its files and
credentials, and the init container's status and log become start progress
or ``dependency_setup_failed``."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from tests.backends.conftest import kube_backend, make_spec
from workers.backends import kubernetes_setup as ks
from workers.backends import naming
from workers.backends.base import ErrorCode, Phase, SetupSpec
from workers.backends.kubernetes_site import Site

GIT_SECRET = "deploy:ghtok-5150aa"  # noqa: S105 - a test credential
FAILURE = (
    "setup failed: uv failed\n"
    "  | Because gamma-missing was not found in the package registry"
)


def unseal(sealed: str) -> str:
    return sealed.removeprefix("sealed:")


@pytest.fixture(params=[False, True], ids=["get", "watch"])
def backend(api, request):
    site = Site(dependency_cache_claim="deps")
    backend = kube_backend(api, site=site, unseal=unseal, watch=request.param)
    yield backend
    backend.close()


def setup_spec():
    spec = make_spec(
        setup=SetupSpec(
            repository_url="https://git.example.org/team/analysis.git",
            fetch_policy="online",
            index_url="https://index.example.org/simple",
            git_secret_sealed=f"sealed:{GIT_SECRET}",
        )
    )
    resources = replace(spec.resources, workspace_storage_bytes=1024**3)
    return replace(spec, resources=resources)


def init_status(**state):
    return [{"name": ks.CONTAINER, "ready": False, "state": state}]


def observe_until(backend, ref, predicate, attempts=50):
    """The watch delivers changes asynchronously: observe until it shows."""
    for _ in range(attempts):
        observation = backend.observe(ref)
        if predicate(observation):
            return observation
        time.sleep(0.05)
    return observation


def test_the_pod_runs_the_setup_init_container_with_its_secret(api, backend):
    spec = setup_spec()
    ref = backend.launch(spec)
    pod = api.get("pods", ref.name)
    (init,) = pod["spec"]["initContainers"]
    assert init["name"] == ks.CONTAINER
    secret = api.get("secrets", naming.runtime_name(spec.worker_id))
    assert secret["stringData"]["git-secret"] == GIT_SECRET
    assert "workspace_setup.py" in secret["stringData"]
    assert GIT_SECRET not in str(pod)  # the pod object holds no credential


def test_a_running_step_reports_its_progress_from_the_init_container_log(api, backend):
    ref = backend.launch(setup_spec())
    api.logs[f"{ref.name}/{ks.CONTAINER}"] = (
        "setup: cloning https://git.example.org/team/analysis.git\n"
        "setup: installing 3 packages\n"
    )
    api.set_pod_status(
        ref.name,
        phase="Pending",
        initContainerStatuses=init_status(
            running={"startedAt": "2025-01-01T00:00:00Z"}
        ),
    )
    observation = observe_until(
        backend, ref, lambda o: o.message == "setup: installing 3 packages"
    )
    assert observation.phase == Phase.PENDING
    assert observation.message == "setup: installing 3 packages"
    assert "setup: cloning https://git.example.org/team/analysis.git" in (
        observation.events
    )


def test_a_failed_init_container_is_dependency_setup_failed(api, backend):
    ref = backend.launch(setup_spec())
    api.set_pod_status(
        ref.name,
        phase="Failed",
        initContainerStatuses=init_status(
            terminated={"exitCode": 86, "reason": "Error", "message": FAILURE}
        ),
    )
    observation = observe_until(backend, ref, lambda o: o.phase == Phase.FAILED)
    assert observation.phase == Phase.FAILED
    assert observation.error_code == ErrorCode.DEPENDENCY_SETUP_FAILED
    assert observation.message == FAILURE


def test_without_a_termination_message_the_log_says_why(api, backend):
    ref = backend.launch(setup_spec())
    api.logs[f"{ref.name}/{ks.CONTAINER}"] = (
        f"setup: installing 3 packages\n{FAILURE}\n"
    )
    api.set_pod_status(
        ref.name,
        phase="Failed",
        initContainerStatuses=init_status(terminated={"exitCode": 86}),
    )
    observation = observe_until(backend, ref, lambda o: o.phase == Phase.FAILED)
    assert observation.error_code == ErrorCode.DEPENDENCY_SETUP_FAILED
    assert observation.message == FAILURE


def test_a_finished_step_hands_over_to_the_runtime(api, backend):
    ref = backend.launch(setup_spec())
    api.set_pod_status(
        ref.name,
        phase="Running",
        podIP="127.0.0.1",
        initContainerStatuses=init_status(terminated={"exitCode": 0}),
        containerStatuses=[{"name": "runtime", "ready": True}],
    )
    observation = observe_until(backend, ref, lambda o: o.phase == Phase.RUNNING)
    assert observation.phase == Phase.RUNNING
