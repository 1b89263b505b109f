"""Pure manifest builders, validated against the Kubernetes 1.34+ schemas."""

from __future__ import annotations

import json
from dataclasses import replace

import kubernetes_validate
import pytest

from tests.backends.conftest import TOKEN, make_spec
from workers.backends import kubernetes_manifests as m
from workers.backends import naming
from workers.backends.base import Mount

VERSIONS = ["1.34.0", kubernetes_validate.latest_version()]


def gpu_spec(**changes):
    spec = make_spec(
        queue_name="gold",
        queue_priority=1000,
        preemptible=True,
        mounts=(Mount("datasets", "/data", read_only=True),),
    )
    resources = replace(
        spec.resources,
        gpu_count=1,
        gpu_model="RTX 6000 Pro",
        gpu_sm_percentage=25,
        workspace_storage_bytes=10 * 1024**3,
        temp_storage_bytes=1024**3,
    )
    return replace(spec, resources=resources, **changes)


def all_manifests(spec):
    ns = "notebooks"
    return [
        m.pod_manifest(spec, namespace=ns),
        m.service_manifest(spec, namespace=ns),
        m.secret_manifest(spec, namespace=ns),
        m.workspace_pvc_manifest(spec, namespace=ns),
        m.resource_claim_manifest(spec, namespace=ns),
    ]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("root_shell", [False, True])
def test_it_builds_manifests_valid_for_kubernetes(version, root_shell):
    for manifest in all_manifests(gpu_spec(root_shell=root_shell)):
        kubernetes_validate.validate(manifest, version, strict=True)


def test_the_validator_is_not_a_rubber_stamp():
    pod = m.pod_manifest(make_spec(), namespace="notebooks")
    pod["spec"]["containers"][0]["securityContext"]["privilegd"] = False
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(pod, VERSIONS[0], strict=True)


def test_it_runs_a_locked_down_non_root_pod():
    pod = m.pod_manifest(make_spec(), namespace="notebooks")
    spec, container = pod["spec"], pod["spec"]["containers"][0]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 1000
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == {
        "privileged": False,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert not (spec["hostNetwork"] or spec["hostPID"] or spec["hostIPC"])
    assert spec["automountServiceAccountToken"] is False
    assert "hostPath" not in json.dumps(pod)


def test_a_root_shell_is_uid_0_and_nothing_more():
    pod = m.pod_manifest(make_spec(root_shell=True), namespace="notebooks")
    assert pod["spec"]["securityContext"]["runAsUser"] == 0
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is False
    context = pod["spec"]["containers"][0]["securityContext"]
    assert context["privileged"] is False and context["capabilities"] == {
        "drop": ["ALL"]
    }
    assert context["allowPrivilegeEscalation"] is False


def test_it_keeps_the_token_out_of_the_pod():
    pod = m.pod_manifest(make_spec(), namespace="notebooks")
    assert TOKEN not in json.dumps(pod)
    env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
    assert (
        env["JUPYTER_TOKEN"]["valueFrom"]["secretKeyRef"]["name"]
        == pod["metadata"]["name"]
    )


def test_it_requests_gpus_through_a_dra_claim():
    spec = gpu_spec()
    claim = m.resource_claim_manifest(spec, namespace="notebooks")
    assert claim["apiVersion"] == "resource.k8s.io/v1"
    request = claim["spec"]["devices"]["requests"][0]
    assert request["exactly"]["count"] == 1
    assert request["exactly"]["selectors"][0]["cel"]["expression"] == (
        'device.attributes["gpu.nvidia.com"].productName.lowerAscii()'
        '.contains("rtx 6000 pro")'
    )
    sharing = claim["spec"]["devices"]["config"][0]["opaque"]["parameters"]["sharing"]
    assert sharing["mpsConfig"]["defaultActiveThreadPercentage"] == 25
    pod = m.pod_manifest(spec, namespace="notebooks")
    assert pod["spec"]["containers"][0]["resources"]["claims"] == [{"name": "gpu"}]
    assert pod["metadata"]["labels"][naming.GPU_SM_KEY] == "25"
    assert m.is_gpu_bound(pod)


def test_a_full_gpu_needs_no_sharing_config():
    spec = gpu_spec()
    spec = replace(spec, resources=replace(spec.resources, gpu_sm_percentage=100))
    assert (
        "config"
        not in m.resource_claim_manifest(spec, namespace="n")["spec"]["devices"]
    )


@pytest.mark.parametrize(
    ("labels", "claims", "bound"),
    [
        ({naming.DRA_KEY: "true", naming.GPU_COUNT_KEY: "1"}, [{"name": "gpu"}], True),
        ({naming.DRA_KEY: "true", naming.GPU_COUNT_KEY: "1"}, [], False),
        ({}, [{"name": "gpu"}], False),
    ],
)
def test_a_gpu_pod_is_bound_only_with_labels_and_claims(labels, claims, bound):
    pod = {"metadata": {"labels": labels}, "spec": {"resourceClaims": claims}}
    assert m.is_gpu_bound(pod) is bound


def test_it_maps_queue_and_preemption():
    pod = m.pod_manifest(gpu_spec(), namespace="notebooks")
    assert pod["spec"]["priorityClassName"] == "notebook-fleet-gold"
    assert pod["metadata"]["labels"][naming.PREEMPTIBLE_KEY] == "true"
    assert "priorityClassName" not in m.pod_manifest(make_spec(), namespace="n")["spec"]


def test_it_sets_limits_storage_and_culling():
    spec = gpu_spec()
    pod = m.pod_manifest(spec, namespace="notebooks")
    container = pod["spec"]["containers"][0]
    assert container["resources"]["limits"]["cpu"] == "1000m"
    assert container["resources"]["requests"]["memory"] == str(1024**3 // 2)
    assert container["resources"]["limits"]["ephemeral-storage"] == str(1024**3)
    assert "--MappingKernelManager.cull_idle_timeout=600" in container["command"]
    claims = {
        v["persistentVolumeClaim"]["claimName"]
        for v in pod["spec"]["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert claims == {"datasets", naming.workspace_volume_name(spec.workspace_id)}


def test_user_labels_never_override_platform_labels():
    spec = make_spec(labels={naming.WORKER_ID_KEY: "someone-else", "team": "ml"})
    labels = m.pod_labels(spec)
    assert labels[naming.WORKER_ID_KEY] == spec.worker_id
    assert labels["team"] == "ml"
