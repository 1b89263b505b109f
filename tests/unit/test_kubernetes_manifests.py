"""Pure manifest builders, validated against the Kubernetes 1.34+ schemas."""

from __future__ import annotations

import json
from dataclasses import replace

import kubernetes_validate
import pytest

from tests.backends.conftest import TOKEN, make_spec
from workers.backends import kubernetes_gpu as gpu
from workers.backends import kubernetes_manifests as m
from workers.backends import kubernetes_policy as policy
from workers.backends import naming
from workers.backends.base import BackendError, ErrorCode, Mount
from workers.backends.kubernetes_site import GpuProfile, Site

PROJECT = "0f5e0f5e-0000-4000-8000-000000000001"

VERSIONS = ["1.34.0", kubernetes_validate.latest_version()]


def gpu_spec(**changes):
    spec = make_spec(
        queue_name="gold",
        queue_priority=1000,
        preemptible=True,
        project_id=PROJECT,
        mounts=(
            Mount(
                "datasets",
                "/data",
                read_only=True,
                project_id=PROJECT,
                size_bytes=1024**3,
                storage_class="fast",
            ),
        ),
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


def all_manifests(spec, site=None):
    site = site or Site()
    labels = m.pod_labels(spec, site)
    return [
        m.pod_manifest(spec, site),
        m.pod_manifest(
            spec,
            Site(user_namespaces=True, dependency_cache_claim="deps"),
            claim="nbf-shared-x-0",
        ),
        m.service_manifest(spec, site),
        m.secret_manifest(spec, site),
        m.workspace_pvc_manifest(spec, site),
        m.project_volume_pvc_manifest(spec, spec.mounts[0], site),
        gpu.resource_claim_manifest(spec, labels, site),
        gpu.shared_claim_manifest(spec, "nbf-shared-x-0", {"w1": 25}, site),
        policy.network_policy_manifest(spec, labels, site),
        policy.priority_class_manifest(
            queue_name="gold", priority=-10, preemptible=True, installation="a b"
        ),
    ]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("root_shell", [False, True])
def test_it_builds_manifests_valid_for_kubernetes(version, root_shell):
    for manifest in all_manifests(gpu_spec(root_shell=root_shell)):
        kubernetes_validate.validate(manifest, version, strict=True)


def test_every_label_value_is_valid_even_for_odd_input():
    spec = gpu_spec(queue_priority=-10, labels={"x/y/Bad Key!": "-odd value-"})
    spec = replace(spec, resources=replace(spec.resources, gpu_model="-RTX 5090-"))
    for manifest in all_manifests(spec):
        for key, value in manifest["metadata"]["labels"].items():
            assert naming.label_key(key) == key
            assert naming.label_value(value) == value, (key, value)
    labels = m.pod_labels(spec)
    assert labels[naming.QUEUE_PRIORITY_KEY] == "minus-10"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(-10, "minus-10"), (10, "10"), (True, "true"), ("RTX 5090", "RTX-5090")],
)
def test_label_value_is_readable_where_it_can_be(value, expected):
    assert naming.label_value(value) == expected


def test_label_value_keeps_distinct_inputs_distinct():
    values = {naming.label_value(v) for v in ("-x", "x", "x-", "_x_", "a" * 80)}
    assert len(values) == 5


def test_the_validator_is_not_a_rubber_stamp():
    pod = m.pod_manifest(make_spec())
    pod["spec"]["containers"][0]["securityContext"]["privilegd"] = False
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(pod, VERSIONS[0], strict=True)


def test_it_runs_a_locked_down_non_root_pod():
    pod = m.pod_manifest(make_spec())
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
    pod = m.pod_manifest(make_spec(root_shell=True))
    assert pod["spec"]["securityContext"]["runAsUser"] == 0
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is False
    context = pod["spec"]["containers"][0]["securityContext"]
    assert context["privileged"] is False and context["capabilities"] == {
        "drop": ["ALL"]
    }
    assert context["allowPrivilegeEscalation"] is False


def test_it_keeps_the_token_out_of_the_pod():
    pod = m.pod_manifest(make_spec())
    assert TOKEN not in json.dumps(pod)
    env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
    assert (
        env["JUPYTER_TOKEN"]["valueFrom"]["secretKeyRef"]["name"]
        == pod["metadata"]["name"]
    )


def test_it_requests_gpus_through_a_dra_claim():
    spec = gpu_spec()
    claim = gpu.resource_claim_manifest(spec, {}, Site())
    assert claim["apiVersion"] == "resource.k8s.io/v1"
    request = claim["spec"]["devices"]["requests"][0]
    assert request["exactly"]["count"] == 1
    assert request["exactly"]["selectors"][0]["cel"]["expression"] == (
        'device.attributes["gpu.nvidia.com"].productName.lowerAscii()'
        '.contains("rtx 6000 pro")'
    )
    assert "config" not in claim["spec"]["devices"]  # own claims: whole GPUs
    pod = m.pod_manifest(spec)
    assert pod["spec"]["containers"][0]["resources"]["claims"] == [{"name": "gpu"}]
    assert pod["metadata"]["labels"][naming.GPU_SM_KEY] == "25"
    assert m.is_gpu_bound(pod)


def test_a_share_is_an_mps_client_capped_at_its_percentage():
    spec = gpu_spec()
    pod = m.pod_manifest(spec, claim="nbf-shared-g-0")
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert env["CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"] == "25"
    assert pod["spec"]["resourceClaims"][0]["resourceClaimName"] == "nbf-shared-g-0"
    claim = gpu.shared_claim_manifest(spec, "nbf-shared-g-0", {"w": 25}, Site())
    opaque = claim["spec"]["devices"]["config"][0]["opaque"]
    assert opaque["driver"] == "gpu.nvidia.com"
    assert opaque["parameters"]["sharing"]["strategy"] == "MPS"
    assert gpu.claim_shares(claim) == {"w": 25}


@pytest.mark.parametrize(
    ("shares", "want", "picked"),
    [
        ([{"a": 50}, {"b": 30}], 50, 0),
        ([{"a": 60}, {"b": 30}], 50, 1),
        ([{"a": 60}, {"b": 60}], 50, None),
        ([{"a": 100}], 1, None),
    ],
)
def test_a_share_goes_where_the_sum_stays_within_100(shares, want, picked):
    claims = [
        gpu.shared_claim_manifest(gpu_spec(), f"c-{i}", s, Site())
        for i, s in enumerate(shares)
    ]
    claim, holding = gpu.pick_shared_claim(claims, "new", want)
    assert not holding
    assert (claim["metadata"]["name"] if claim else None) == (
        None if picked is None else f"c-{picked}"
    )


def test_the_device_class_maps_to_its_driver_and_attribute_domain():
    """mig.nvidia.com is a DeviceClass of the gpu.nvidia.com driver: its
    attributes live under gpu.nvidia.com, never under the class name."""
    spec = gpu_spec()
    spec = replace(
        spec, resources=replace(spec.resources, gpu_resource_name="nvidia.com/mig")
    )
    claim = gpu.resource_claim_manifest(spec, {}, Site())
    exactly = claim["spec"]["devices"]["requests"][0]["exactly"]
    assert exactly["deviceClassName"] == "mig.nvidia.com"
    assert (
        'device.attributes["gpu.nvidia.com"]'
        in exactly["selectors"][0]["cel"]["expression"]
    )
    shared = gpu.shared_claim_manifest(spec, "s", {}, Site())
    assert shared["spec"]["devices"]["config"][0]["opaque"]["driver"] == (
        "gpu.nvidia.com"
    )


def test_gpu_node_placement_comes_from_the_profile():
    profile = GpuProfile(
        "gpu.example.com",
        driver="gpu.example.com",
        attribute_domain="gpu.example.com",
        tolerations=({"key": "gpu", "operator": "Exists", "effect": "NoSchedule"},),
        node_selector={"pool": "gpu"},
    )
    site = Site(gpu_profiles={"example.com/gpu": profile})
    spec = gpu_spec()
    spec = replace(
        spec, resources=replace(spec.resources, gpu_resource_name="example.com/gpu")
    )
    pod = m.pod_manifest(spec, site)
    assert pod["spec"]["nodeSelector"] == {"pool": "gpu"}
    assert pod["spec"]["tolerations"][0]["key"] == "gpu"
    with pytest.raises(BackendError) as raised:
        m.pod_manifest(spec)  # the default profiles do not know it
    assert raised.value.code == ErrorCode.DEVICE_CLASS_UNAVAILABLE


def test_the_network_policy_admits_only_the_control_plane():
    spec = make_spec()
    site = Site(control_plane_namespace="fleet")
    netpol = policy.network_policy_manifest(spec, {}, site)
    assert netpol["spec"]["podSelector"]["matchLabels"] == {
        naming.WORKER_ID_KEY: spec.worker_id
    }
    (rule,) = netpol["spec"]["ingress"]
    (peer,) = rule["from"]
    assert peer["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "fleet"
    }
    assert peer["podSelector"]["matchLabels"] == {
        "notebook-fleet.io/runtime-access": "true"
    }
    assert rule["ports"] == [{"protocol": "TCP", "port": spec.port}]


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
    pod = m.pod_manifest(gpu_spec())
    assert pod["spec"]["priorityClassName"] == "notebook-fleet-gold"
    assert pod["metadata"]["labels"][naming.PREEMPTIBLE_KEY] == "true"
    # every queue has its class: a pod without one could preempt at priority 0
    plain = m.pod_manifest(make_spec())["spec"]
    assert plain["priorityClassName"] == "notebook-fleet-default"
    spot = policy.priority_class_manifest(
        queue_name="spot", priority=-5, preemptible=True, installation="x"
    )
    assert spot["preemptionPolicy"] == "Never" and spot["value"] == -5


def test_it_sets_limits_storage_and_culling():
    spec = gpu_spec()
    pod = m.pod_manifest(spec)
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
    assert claims == {
        naming.project_volume_name(PROJECT, "datasets"),
        naming.workspace_volume_name(spec.workspace_id),
    }
    (data,) = [v for v in pod["spec"]["volumes"] if v["name"] == "mount-0"]
    assert data["persistentVolumeClaim"]["readOnly"] is True


def test_project_volume_names_differ_per_project():
    one = naming.project_volume_name(PROJECT, "datasets")
    other = naming.project_volume_name(PROJECT.replace("1", "2"), "datasets")
    assert one != other
    assert naming.is_dns_label(one) and naming.is_dns_label(other)


def test_user_labels_never_override_platform_labels():
    spec = make_spec(labels={naming.WORKER_ID_KEY: "someone-else", "team": "ml"})
    labels = m.pod_labels(spec)
    assert labels[naming.WORKER_ID_KEY] == spec.worker_id
    assert labels["team"] == "ml"


def test_without_a_setup_step_no_pod_mounts_the_dependency_cache():
    # The cache is the setup step's (issue 14): tests/unit/test_kubernetes_setup.py
    pod = m.pod_manifest(make_spec(), Site(dependency_cache_claim="deps"))
    assert "deps" not in str(pod) and "initContainers" not in pod["spec"]
    env = {e["name"] for e in pod["spec"]["containers"][0]["env"]}
    assert not {"PIP_CACHE_DIR", "CONDA_PKGS_DIRS"} & env


def test_the_site_comes_from_settings(settings):
    from workers.backends.registry import kubernetes_site

    settings.NOTEBOOK_FLEET_INSTALLATION_ID = "blue"
    settings.NOTEBOOK_RUNTIME_KUBE_GPU_PROFILES = {
        "example.com/gpu": {
            "device_class": "gpu.example.com",
            "driver": "gpu.example.com",
            "attribute_domain": "example.com",
            "node_selector": {"pool": "gpu"},
        }
    }
    site = kubernetes_site()
    assert site.installation == "blue"
    assert site.selector.endswith(f"{naming.INSTALLATION_KEY}=blue")
    profile = site.gpu_profiles["example.com/gpu"]
    assert (profile.driver, profile.attribute_domain) == (
        "gpu.example.com",
        "example.com",
    )
    settings.NOTEBOOK_RUNTIME_KUBE_GPU_PROFILES = {}
    defaults = kubernetes_site().gpu_profiles
    assert defaults["nvidia.com/mig"].device_class == "mig.nvidia.com"
    assert defaults["nvidia.com/mig"].driver == "gpu.nvidia.com"
