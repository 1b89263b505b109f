"""The kubernetes backend: the real client over HTTP against FakeKubeAPI."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from tests.backends.conftest import (
    GIB,
    REPO,
    kube_backend,
    make_spec,
    wait_for_phase,
    wait_until,
)
from workers.backends import kubernetes_gpu as gpu
from workers.backends import kubernetes_manifests as manifests
from workers.backends import naming
from workers.backends.base import BackendError, ErrorCode, Mount, Phase
from workers.backends.kubernetes_gpu import claim_shares
from workers.backends.kubernetes_manifests import is_gpu_bound, secret_manifest
from workers.backends.kubernetes_site import Site
from workers.backends.kubernetes_watch import Reflector


@pytest.fixture
def backend(api):
    return kube_backend(api)


def gpu_spec(**resources):
    base = make_spec()
    values = {
        "gpu_count": 2,
        "gpu_model": "RTX 5090",
        "gpu_sm_percentage": 100,
        "gpu_resource_name": "nvidia.com/gpu",
        **resources,
    }
    return replace(base, resources=replace(base.resources, **values))


def other_installation(api, name="other"):
    return kube_backend(api, site=Site(installation=name))


def test_it_creates_claim_pod_service_secret_and_policy_for_a_gpu_worker(api, backend):
    spec = gpu_spec()
    ref = backend.launch(spec)
    claim = api.get("resourceclaims", naming.claim_name(spec.worker_id))
    request = claim["spec"]["devices"]["requests"][0]["exactly"]
    assert request["count"] == 2 and request["deviceClassName"] == "gpu.nvidia.com"
    assert "rtx 5090" in request["selectors"][0]["cel"]["expression"]
    pod = api.get("pods", ref.name)
    assert (
        pod["spec"]["resourceClaims"][0]["resourceClaimName"]
        == claim["metadata"]["name"]
    )
    assert pod["spec"]["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists"}
    ]
    assert api.get("services", ref.name) and api.get("secrets", ref.name)
    assert api.get("networkpolicies", ref.name)
    for obj in (claim, pod, api.get("networkpolicies", ref.name)):
        assert obj["metadata"]["labels"][naming.INSTALLATION_KEY] == "default"
    assert not is_gpu_bound({"metadata": pod["metadata"], "spec": {}})
    assert is_gpu_bound(pod)


def shares_of(api):
    return {
        name: claim_shares(api.get("resourceclaims", name))
        for name in api.names("resourceclaims")
    }


def test_two_half_gpu_workers_share_one_claim_released_by_the_last(api, backend):
    specs = [gpu_spec(gpu_count=1, gpu_sm_percentage=50) for _ in range(3)]
    refs = [backend.launch(spec) for spec in specs]
    backend.launch(specs[0])  # again: same place, no second share
    shares = shares_of(api)
    assert sorted(map(len, shares.values())) == [1, 2]
    pods = [api.get("pods", ref.name) for ref in refs]
    assert pods[0]["spec"]["resourceClaims"] == pods[1]["spec"]["resourceClaims"]
    env = {e["name"]: e.get("value") for e in pods[0]["spec"]["containers"][0]["env"]}
    assert env["CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"] == "50"
    shared = api.get(
        "resourceclaims", pods[0]["spec"]["resourceClaims"][0]["resourceClaimName"]
    )
    sharing = shared["spec"]["devices"]["config"][0]["opaque"]
    assert sharing["driver"] == "gpu.nvidia.com"
    assert sharing["parameters"]["sharing"]["strategy"] == "MPS"

    backend.terminate(refs[0])
    assert sorted(map(len, shares_of(api).values())) == [1, 1]
    backend.terminate(refs[1])
    backend.terminate(refs[2])
    backend.terminate(refs[2])
    assert api.names("resourceclaims") == set()


def test_concurrent_shares_never_overfill_a_gpu(api, backend):
    specs = [gpu_spec(gpu_count=1, gpu_sm_percentage=30) for _ in range(7)]
    with ThreadPoolExecutor(7) as pool:
        list(pool.map(backend.launch, specs))
    shares = shares_of(api)
    assert sum(len(s) for s in shares.values()) == 7
    assert all(sum(s.values()) <= 100 for s in shares.values())
    assert len(shares) == 3  # 3 + 3 + 1 workers of 30%


def test_it_maps_an_mps_prepare_failure_to_device_class_unavailable(api, backend):
    ref = backend.launch(gpu_spec(gpu_count=1, gpu_sm_percentage=50))
    api.add_event(
        ref.name,
        "FailedPrepareDynamicResources",
        "Failed to prepare dynamic resources: NodePrepareResources failed for "
        "ResourceClaim nbf-shared-x: prepare devices failed: MPS sharing "
        "requested but feature gate MPSSupport is not enabled",
    )
    observation = backend.observe(ref)
    assert observation.phase == Phase.FAILED
    assert observation.error_code == ErrorCode.DEVICE_CLASS_UNAVAILABLE
    assert "MPSSupport" in observation.message


def test_an_unknown_gpu_profile_fails_before_creating_anything(api, backend):
    spec = gpu_spec(gpu_resource_name="amd.com/gpu")
    with pytest.raises(BackendError) as raised:
        backend.launch(spec)
    assert raised.value.code == ErrorCode.DEVICE_CLASS_UNAVAILABLE
    assert "NOTEBOOK_RUNTIME_KUBE_GPU_PROFILES" in raised.value.message
    assert not api.names("secrets")


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


def test_two_installations_in_one_namespace_never_touch_each_other(api, backend):
    ours, theirs = make_spec(), make_spec()
    other = other_installation(api)
    backend.launch(ours)
    other.launch(theirs)
    assert [r.worker_id for r in backend.list_managed()] == [ours.worker_id]
    assert [r.worker_id for r in other.list_managed()] == [theirs.worker_id]
    with pytest.raises(BackendError) as raised:
        other.launch(ours)  # same worker id, the other installation's objects
    assert raised.value.code == ErrorCode.CONFLICT


def test_it_lists_every_kind_in_one_call_each(api, backend):
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
    calls = api.requests[before:]
    assert sorted(path.rsplit("/", 1)[1] for _, path in calls) == [
        "networkpolicies",
        "pods",
        "resourceclaims",
        "secrets",
        "services",
    ]
    assert {method for method, _ in calls} == {"GET"}


def test_it_lists_leftovers_of_a_half_finished_launch_and_removes_them(api, backend):
    spec = make_spec()
    api.fail_next("POST", "pods", 500, "etcdserver: request timed out")
    with pytest.raises(BackendError):
        backend.launch(spec)
    assert api.get("secrets", naming.runtime_name(spec.worker_id))
    (listed,) = [
        r for r in backend.list_runtimes() if r.ref.worker_id == spec.worker_id
    ]
    assert listed.phase == Phase.NOT_FOUND and "leftover" in listed.message
    backend.terminate(listed.ref)
    assert spec.worker_id not in {r.worker_id for r in backend.list_managed()}
    assert not api.names("secrets") and not api.names("networkpolicies")


def test_a_deleted_pod_is_terminating_until_its_grace_period_ends(api, backend):
    spec = make_spec()
    ref = backend.launch(spec)
    api.set_pod_status(ref.name, phase="Running", podIP="127.0.0.1")
    api.grace_seconds = 600  # kubelet finishes below, not a timer
    backend.terminate(ref)
    backend.terminate(ref)  # again while terminating: fine
    assert backend.observe(ref).phase == Phase.TERMINATING
    (listed,) = backend.list_runtimes()
    assert listed.phase == Phase.TERMINATING and listed.stopped
    api.finish_terminations()
    assert backend.observe(ref).phase == Phase.NOT_FOUND
    assert backend.list_runtimes() == []


def test_a_negative_queue_priority_makes_a_valid_label(api, backend):
    spec = make_spec(queue_name="scavenger", queue_priority=-10, preemptible=True)
    backend.priority_classes_sync(
        [{"name": "scavenger", "priority": -10, "preemptible": True}]
    )
    ref = backend.launch(spec)
    labels = api.get("pods", ref.name)["metadata"]["labels"]
    assert labels[naming.QUEUE_PRIORITY_KEY] == "minus-10"


def test_the_fake_rejects_invalid_labels_like_the_api_server(api, backend):
    body = secret_manifest(make_spec())
    body["metadata"]["labels"]["notebook-fleet.io/queue-priority"] = "-10"
    with pytest.raises(ApiException) as raised:
        backend._call(backend.core.create_namespaced_secret, "notebooks", body)
    assert raised.value.status == 422
    assert "a valid label must be" in raised.value.body
    body["metadata"]["labels"] = {"bad key!": "x"}
    with pytest.raises(ApiException):
        backend._call(backend.core.create_namespaced_secret, "notebooks", body)


def test_a_missing_priority_class_is_a_clear_error(api, backend):
    with pytest.raises(BackendError) as raised:
        backend.launch(make_spec(queue_name="gold", queue_priority=1000))
    assert raised.value.code == ErrorCode.PRIORITY_CLASS_MISSING
    assert "kube_sync_priority_classes" in raised.value.message


def test_it_syncs_priority_classes_from_queues(api, backend):
    queues = [
        {"name": "gold", "priority": 1000, "preemptible": False},
        {"name": "spot", "priority": -5, "preemptible": True},
    ]
    backend.priority_classes_sync(queues)
    gold = api.get("priorityclasses", "notebook-fleet-gold")
    spot = api.get("priorityclasses", "notebook-fleet-spot")
    assert (gold["value"], gold["preemptionPolicy"]) == (1000, "PreemptLowerPriority")
    assert (spot["value"], spot["preemptionPolicy"]) == (-5, "Never")
    backend.priority_classes_sync([{**queues[0], "priority": 2000}])
    assert api.get("priorityclasses", "notebook-fleet-gold")["value"] == 2000
    backend.launch(make_spec(queue_name="gold", queue_priority=2000))


@pytest.mark.parametrize(
    ("level", "refused"), [("restricted", True), ("baseline", False)]
)
def test_pod_security_refuses_a_root_shell_only_under_restricted(
    api, backend, level, refused
):
    api.put(
        "namespaces",
        {
            "metadata": {
                "name": "notebooks",
                "labels": {"pod-security.kubernetes.io/enforce": level},
            }
        },
    )
    backend.launch(make_spec())  # non-root passes both
    spec = make_spec(root_shell=True)
    if not refused:
        backend.launch(spec)
        return
    with pytest.raises(BackendError) as raised:
        backend.launch(spec)
    assert raised.value.code == ErrorCode.INVALID_SPEC
    assert "baseline" in raised.value.message


def test_user_namespaces_behind_a_setting(api):
    backend = kube_backend(api, site=Site(user_namespaces=True))
    ref = backend.launch(make_spec(root_shell=True))
    assert api.get("pods", ref.name)["spec"]["hostUsers"] is False


def test_runtimes_never_run_in_the_control_planes_namespace(api):
    with pytest.raises(BackendError) as raised:
        kube_backend(api, site=Site(namespace="fleet", control_plane_namespace="fleet"))
    assert "own namespace" in raised.value.message


def project_spec(project_id, *mounts):
    return make_spec(project_id=project_id, mounts=mounts)


def test_project_volumes_are_per_project_created_from_size_and_class(api, backend):
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    for project in (a, b):
        mount = Mount(
            "datasets",
            "/data",
            read_only=True,
            project_id=project,
            size_bytes=5 * 1024**3,
            storage_class="fast",
        )
        ref = backend.launch(project_spec(project, mount))
        pod = api.get("pods", ref.name)
        (volume,) = [v for v in pod["spec"]["volumes"] if v["name"] == "mount-0"]
        assert volume["persistentVolumeClaim"] == {
            "claimName": naming.project_volume_name(project, "datasets"),
            "readOnly": True,
        }
    names = api.names("persistentvolumeclaims")
    assert names == {
        naming.project_volume_name(a, "datasets"),
        naming.project_volume_name(b, "datasets"),
    }
    pvc = api.get("persistentvolumeclaims", naming.project_volume_name(a, "datasets"))
    assert pvc["spec"]["storageClassName"] == "fast"
    assert pvc["spec"]["resources"]["requests"]["storage"] == str(5 * 1024**3)
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]


def test_a_volume_of_another_project_is_never_mounted(api, backend):
    mine, theirs = str(uuid.uuid4()), str(uuid.uuid4())
    mount = Mount("datasets", "/data", project_id=theirs, size_bytes=1024**3)
    with pytest.raises(BackendError) as raised:
        backend.launch(project_spec(mine, mount))
    assert raised.value.code == ErrorCode.INVALID_SPEC
    assert "another project" in raised.value.message
    assert not api.names("persistentvolumeclaims") and not api.names("pods")


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


DEVICES = "gpu.nvidia.com.deviceclass.resource.k8s.io/devices"
CLAIMS = "count/resourceclaims.resource.k8s.io"


def create_quota(backend, name: str, **hard: str) -> None:
    """A ResourceQuota in the runtime namespace, through the API."""
    body = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": name},
        "spec": {"hard": hard},
    }
    backend._call(backend.core.create_namespaced_resource_quota, "notebooks", body)


def quota_used(backend, name: str) -> dict:
    quota = backend._call(
        backend.core.read_namespaced_resource_quota, name, "notebooks"
    )
    return quota["status"]["used"]


def test_a_claim_over_the_device_quota_is_refused_like_the_api_server(api, backend):
    create_quota(backend, "gpu-quota", **{DEVICES: "3", CLAIMS: "10"})
    first = backend.launch(gpu_spec(gpu_count=2))
    assert quota_used(backend, "gpu-quota") == {DEVICES: "2", CLAIMS: "1"}

    spec = gpu_spec(gpu_count=2)
    claim = gpu.resource_claim_manifest(
        spec, manifests.pod_labels(spec, backend.site), backend.site
    )
    with pytest.raises(ApiException) as raw:
        backend._call(
            backend.resource.create_namespaced_resource_claim, "notebooks", claim
        )
    status = json.loads(raw.value.body)
    name = naming.claim_name(spec.worker_id)
    assert (raw.value.status, status["reason"], status["code"]) == (
        403,
        "Forbidden",
        403,
    )
    assert status["message"] == (
        f'resourceclaims.resource.k8s.io "{name}" is forbidden: exceeded quota: '
        f"gpu-quota, requested: {DEVICES}=2, used: {DEVICES}=2, limited: {DEVICES}=3"
    )
    assert status["details"] == {
        "name": name,
        "group": "resource.k8s.io",
        "kind": "resourceclaims",
    }

    with pytest.raises(BackendError) as raised:
        backend.launch(spec)
    assert raised.value.code == ErrorCode.QUOTA_EXCEEDED
    assert not raised.value.retryable
    assert "exceeded quota: gpu-quota" in raised.value.message
    assert "ResourceQuota" in raised.value.message  # what to do
    assert not api.get("pods", naming.runtime_name(spec.worker_id))

    backend.terminate(first)  # frees the devices: used goes back down
    assert quota_used(backend, "gpu-quota") == {DEVICES: "0", CLAIMS: "0"}
    backend.launch(spec)


def test_workers_sharing_a_gpu_are_charged_one_device(api, backend):
    """Joining a shared claim changes no usage; only a new claim counts."""
    create_quota(backend, "gpu-quota", **{DEVICES: "1"})
    backend.launch(gpu_spec(gpu_count=1, gpu_sm_percentage=50))
    backend.launch(gpu_spec(gpu_count=1, gpu_sm_percentage=50))
    assert quota_used(backend, "gpu-quota") == {DEVICES: "1"}
    with pytest.raises(BackendError) as raised:
        backend.launch(gpu_spec(gpu_count=1, gpu_sm_percentage=30))
    assert raised.value.code == ErrorCode.QUOTA_EXCEEDED


def test_pods_over_count_or_cpu_quota_are_refused(api, backend):
    create_quota(backend, "compute", **{"count/pods": "2", "requests.cpu": "600m"})
    refs = [backend.launch(make_spec()) for _ in range(2)]  # 250m each
    assert quota_used(backend, "compute") == {"count/pods": "2", "requests.cpu": "500m"}
    with pytest.raises(BackendError) as raised:
        backend.launch(make_spec())
    assert raised.value.code == ErrorCode.QUOTA_EXCEEDED
    assert (
        "exceeded quota: compute, requested: count/pods=1,requests.cpu=250m, "
        "used: count/pods=2,requests.cpu=500m, limited: count/pods=2,"
        "requests.cpu=600m"
    ) in raised.value.message
    api.set_pod_status(refs[0].name, phase="Failed")  # a finished pod is free
    assert quota_used(backend, "compute") == {"count/pods": "1", "requests.cpu": "250m"}
    backend.launch(make_spec())


def test_the_shipped_example_quota_counts_what_the_backend_makes(api, backend):
    path = REPO / "deploy/kubernetes/overlays/example/runtime-quota.yaml"
    body = yaml.safe_load(path.read_text())
    backend._call(backend.core.create_namespaced_resource_quota, "notebooks", body)
    backend.launch(gpu_spec(gpu_count=1, workspace_storage_bytes=GIB))
    used = quota_used(backend, body["metadata"]["name"])
    assert used[DEVICES] == used["count/pods"] == used[CLAIMS] == "1"
    assert used["requests.cpu"] == "250m" and used["persistentvolumeclaims"] == "1"
    assert used["requests.storage"] == str(GIB)


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


def test_it_deletes_everything_but_the_volumes(api, backend):
    spec = gpu_spec(workspace_storage_bytes=10 * 1024**3)
    ref = backend.launch(spec)
    api.logs[ref.name] = "line 1\nline 2\n"
    assert backend.logs(ref, tail=2) == "line 1\nline 2\n"
    backend.terminate(ref)
    left = {
        (plural, name)
        for plural, _, name in api.objects
        if plural not in ("events", "priorityclasses")
    }
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


@pytest.fixture
def watched(api):
    backend = kube_backend(api, watch=True)
    yield backend
    backend.close()


def single_gets(api, ref) -> int:
    return api.requests.count(("GET", f"/api/v1/namespaces/notebooks/pods/{ref.name}"))


def test_the_shared_watch_answers_observe_without_a_request_per_poll(api, watched):
    assert watched.watch.wait_synced(10)
    ref = watched.launch(make_spec())
    api.add_event(ref.name, "Scheduled", "assigned to node-1")
    api.set_pod_status(
        ref.name,
        phase="Running",
        podIP="127.0.0.1",
        containerStatuses=[{"name": "runtime", "ready": True}],
    )

    def running_with_its_event():
        # Pods and events come through two watches, each on its own thread:
        # the pod's new phase may be in before the event written first.
        seen = watched.observe(ref)
        scheduled = "Scheduled: assigned to node-1" in seen.events
        return seen.phase == Phase.RUNNING and scheduled

    wait_until(running_with_its_event, "the running pod and its event", 10)
    for _ in range(20):
        watched.observe(ref)
    assert single_gets(api, ref) == 0
    assert api.count("GET", "events") == 1  # the initial list only
    watched.terminate(ref)
    api.finish_terminations()
    assert wait_for_phase(watched, ref, {Phase.NOT_FOUND}, 10).phase == Phase.NOT_FOUND


def test_the_watch_lists_again_after_410_gone(api, watched):
    assert watched.watch.wait_synced(10)
    path = "/api/v1/namespaces/notebooks/pods"
    wait_until(lambda: ("WATCH", path) in api.requests, "the pod watch", 10)
    lists = api.requests.count(("GET", path))
    # The compaction cuts the live watch (FakeKubeAPI.compact), so the
    # write right after it cannot carry the watch's version past it: the
    # resume from the old version is 410 Gone, whatever the timing.
    api.compact()
    ref = watched.launch(make_spec())
    wait_until(
        lambda: api.requests.count(("GET", path)) > lists, "a new list after 410", 10
    )
    assert wait_until(lambda: watched.watch.pods.get(ref.name), "the pod", 10)


def test_the_watch_keeps_bounded_memory(api, backend):
    reflector = Reflector(
        backend.core.list_namespaced_pod,
        namespace="notebooks",
        key=lambda pod: pod["metadata"]["name"],
        max_objects=3,
    )
    for _ in range(5):
        backend.launch(make_spec())
    reflector.start()
    try:
        assert reflector.wait_synced(10)
        assert len(reflector.items()) == 3
    finally:
        reflector.stop()


WATCHED_KINDS = (
    "pods",
    "events",
    "services",
    "secrets",
    "networkpolicies",
    "resourceclaims",
)


def lists_and_watches(api) -> tuple[dict, dict]:
    """LIST and WATCH requests per kind (a GET of one object is no LIST)."""
    lists, watches = {}, {}
    for method, path in list(api.requests):
        kind = path.rstrip("/").rsplit("/", 1)[-1]
        if kind in WATCHED_KINDS:
            counts = watches if method == "WATCH" else lists
            if method in ("GET", "WATCH"):
                counts[kind] = counts.get(kind, 0) + 1
    return lists, watches


def listed_ids(backend) -> dict[str, Phase]:
    return {r.ref.worker_id: r.phase for r in backend.list_runtimes()}


def test_reconcile_lists_every_kind_from_the_watch_without_a_list(api, watched):
    """Five list_runtimes passes (reconcile's read) after warm watches: no
    LIST at all; a half-finished launch appearing later is still found
    (through the watch) and its removal leaves nothing listed."""
    assert watched.watch.wait_synced(10)
    once = {k: 1 for k in WATCHED_KINDS}
    wait_until(lambda: lists_and_watches(api)[1] == once, "a watch per kind", 10)
    assert lists_and_watches(api)[0] == once
    running = [watched.launch(make_spec()) for _ in range(2)]
    shared = watched.launch(gpu_spec(gpu_count=1, gpu_sm_percentage=50))
    wanted = {r.worker_id for r in [*running, shared]}
    wait_until(lambda: wanted <= listed_ids(watched).keys(), "the pods", 10)
    warm = lists_and_watches(api)  # + joining the shared claim: a create

    for _ in range(5):
        assert listed_ids(watched).keys() == wanted
    orphan = make_spec()
    api.fail_next("POST", "pods", 500, "etcdserver: request timed out")
    with pytest.raises(BackendError):
        watched.launch(orphan)
    found = wait_until(
        lambda: listed_ids(watched).get(orphan.worker_id), "the orphan", 10
    )
    assert found == Phase.NOT_FOUND
    watched.terminate(watched._ref(orphan.worker_id, orphan.port))
    wait_until(
        lambda: orphan.worker_id not in listed_ids(watched), "the orphan gone", 10
    )
    assert not api.names("secrets") - {naming.runtime_name(w) for w in wanted}
    assert lists_and_watches(api) == warm  # no LIST, no second WATCH


def test_a_share_held_without_a_pod_is_listed_as_a_leftover(api, watched):
    """A share the watch had not seen when its worker was removed is not
    lost: the holder is listed, so reconcile releases it."""
    assert watched.watch.wait_synced(10)
    spec = gpu_spec(gpu_count=1, gpu_sm_percentage=50)
    ref = watched.launch(spec)
    for plural, name in (("pods", ref.name), ("secrets", ref.name)):
        del api.objects[(plural, "notebooks", name)]  # behind the watch's back
    for plural in ("services", "networkpolicies"):
        del api.objects[(plural, "notebooks", ref.name)]
    watched.close()
    backend = kube_backend(api)  # a fresh LIST sees only the shared claim
    (listed,) = backend.list_runtimes()
    assert (listed.ref.worker_id, listed.phase) == (spec.worker_id, Phase.NOT_FOUND)
    assert "ResourceClaim" in listed.message
    backend.terminate(listed.ref)
    assert api.names("resourceclaims") == set()
