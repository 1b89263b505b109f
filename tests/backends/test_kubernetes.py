"""The kubernetes backend: the real client over HTTP against FakeKubeAPI."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.backends.conftest import kube_backend, make_spec
from tests.backends.fake_kube import FakeKubeAPI
from workers.backends import naming
from workers.backends.base import BackendError, ErrorCode, Phase
from workers.backends.kubernetes_manifests import is_gpu_bound


@pytest.fixture
def api():
    api = FakeKubeAPI().start()
    yield api
    api.stop()


@pytest.fixture
def backend(api):
    return kube_backend(api)


def gpu_spec(**resources):
    base = make_spec()
    return replace(
        base,
        resources=replace(
            base.resources,
            gpu_count=2,
            gpu_model="RTX 5090",
            gpu_sm_percentage=50,
            gpu_resource_name="nvidia.com/gpu",
            **resources,
        ),
    )


def test_it_creates_claim_pod_service_and_secret_for_a_gpu_worker(api, backend):
    spec = gpu_spec()
    ref = backend.launch(spec)
    claim = api.get("resourceclaims", naming.claim_name(spec.worker_id))
    request = claim["spec"]["devices"]["requests"][0]["exactly"]
    assert request["count"] == 2 and request["deviceClassName"] == "gpu.nvidia.com"
    assert "rtx 5090" in request["selectors"][0]["cel"]["expression"]
    assert claim["metadata"]["labels"][naming.GPU_SM_KEY] == "50"
    pod = api.get("pods", ref.name)
    assert (
        pod["spec"]["resourceClaims"][0]["resourceClaimName"]
        == claim["metadata"]["name"]
    )
    assert api.get("services", ref.name) and api.get("secrets", ref.name)
    assert not is_gpu_bound({"metadata": pod["metadata"], "spec": {}})
    assert is_gpu_bound(pod)


def test_it_adopts_its_own_objects_and_refuses_foreign_ones(api, backend):
    spec = make_spec()
    backend.launch(spec)
    backend.launch(spec)
    assert api.count("POST", "pods") == 2 and len(backend.list_managed()) == 1

    foreign = make_spec()
    api.put(
        "pods",
        {
            "metadata": {
                "name": naming.runtime_name(foreign.worker_id),
                "namespace": "notebooks",
                "labels": {"app": "x"},
            }
        },
    )
    with pytest.raises(BackendError) as raised:
        backend.launch(foreign)
    assert raised.value.code == ErrorCode.CONFLICT


def test_it_lists_managed_pods_in_one_call(api, backend):
    for _ in range(3):
        backend.launch(make_spec())
    api.put(
        "pods",
        {
            "metadata": {
                "name": "someone-else",
                "namespace": "notebooks",
                "labels": {"app": "other"},
            }
        },
    )
    before = len(api.requests)
    refs = backend.list_managed()
    assert len(refs) == 3
    assert api.requests[before:] == [("GET", "/api/v1/namespaces/notebooks/pods")]


@pytest.mark.parametrize(
    ("status", "message", "code", "retryable"),
    [
        (
            403,
            'pods "x" is forbidden: exceeded quota: gpu-quota, requested: '
            "requests.nvidia.com/gpu=2",
            ErrorCode.QUOTA_EXCEEDED,
            False,
        ),
        (500, "etcdserver: request timed out", ErrorCode.GATEWAY_UNREACHABLE, True),
        (422, "Pod is invalid", ErrorCode.INVALID_SPEC, False),
        (403, "pods is forbidden: User cannot create", ErrorCode.INTERNAL, False),
    ],
)
def test_it_maps_api_errors_on_create(api, backend, status, message, code, retryable):
    api.fail_next("POST", "pods", status, message)
    with pytest.raises(BackendError) as raised:
        backend.launch(make_spec())
    assert raised.value.code == code
    assert raised.value.retryable is retryable


def test_it_maps_a_missing_device_class_on_create(api, backend):
    api.fail_next(
        "POST",
        "resourceclaims",
        422,
        'deviceclass.resource.k8s.io "gpu.nvidia.com" not found',
    )
    with pytest.raises(BackendError) as raised:
        backend.launch(gpu_spec())
    assert raised.value.code == ErrorCode.DEVICE_CLASS_UNAVAILABLE


@pytest.mark.parametrize(
    ("status", "events", "phase", "code"),
    [
        (
            {
                "phase": "Pending",
                "containerStatuses": [
                    {
                        "name": "runtime",
                        "ready": False,
                        "state": {
                            "waiting": {
                                "reason": "ImagePullBackOff",
                                "message": "Back-off pulling image",
                            }
                        },
                    }
                ],
            },
            [],
            Phase.FAILED,
            ErrorCode.IMAGE_PULL_FAILED,
        ),
        (
            {
                "phase": "Pending",
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": "0/3 nodes are available: 3 Insufficient cpu.",
                    }
                ],
            },
            [],
            Phase.PENDING,
            ErrorCode.UNSCHEDULABLE,
        ),
        (
            {"phase": "Pending"},
            [("FailedScheduling", 'deviceclass "gpu.nvidia.com" not found')],
            Phase.FAILED,
            ErrorCode.DEVICE_CLASS_UNAVAILABLE,
        ),
        (
            {"phase": "Failed", "reason": "Evicted", "message": "preempted"},
            [],
            Phase.FAILED,
            "",
        ),
    ],
)
def test_it_maps_pod_states_to_phases_and_codes(
    api, backend, status, events, phase, code
):
    ref = backend.launch(make_spec())
    api.set_pod_status(ref.name, **status)
    for reason, message in events:
        api.add_event(ref.name, reason, message)
    observation = backend.observe(ref)
    assert (observation.phase, observation.error_code) == (phase, code)


def test_it_turns_pod_events_into_progress_messages(api, backend):
    ref = backend.launch(make_spec())
    api.add_event(ref.name, "Scheduled", "assigned to node-1")
    api.add_event(ref.name, "Pulling", "pulling image")
    observation = backend.observe(ref)
    assert observation.phase == Phase.PENDING
    assert observation.events == (
        "Scheduled: assigned to node-1",
        "Pulling: pulling image",
    )


def test_it_says_unknown_when_the_api_is_down_and_raises_retryable(api, backend):
    ref = backend.launch(make_spec())
    api.stop()
    assert backend.observe(ref).phase == Phase.UNKNOWN
    for call in (backend.list_managed, lambda: backend.terminate(ref)):
        with pytest.raises(BackendError) as raised:
            call()
        assert raised.value.code == ErrorCode.GATEWAY_UNREACHABLE
        assert raised.value.retryable


def test_it_says_unknown_on_a_5xx(api, backend):
    ref = backend.launch(make_spec())
    api.fail_next("GET", "pods", 503, "apiserver overloaded")
    assert backend.observe(ref).phase == Phase.UNKNOWN


def test_it_deletes_everything_but_the_workspace_volume(api, backend):
    spec = gpu_spec(workspace_storage_bytes=10 * 1024**3)
    ref = backend.launch(spec)
    api.logs[ref.name] = "line 1\nline 2\n"
    assert backend.logs(ref, tail=2) == "line 1\nline 2\n"
    backend.terminate(ref)
    left = {(plural, name) for plural, _, name in api.objects if plural != "events"}
    assert left == {
        ("persistentvolumeclaims", naming.workspace_volume_name(spec.workspace_id))
    }
    assert backend.logs(ref) == ""


def test_a_slow_api_is_unknown_after_one_timeout_not_retried(api, backend):
    ref = backend.launch(make_spec())
    api.delay = 1.5  # the backend's timeout is 1 s
    before = api.count("GET", "pods")
    try:
        assert backend.observe(ref).phase == Phase.UNKNOWN
    finally:
        api.delay = 0
    assert api.count("GET", "pods") == before + 1
