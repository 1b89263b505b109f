"""deploy/kubernetes: every manifest file, and the example overlay as
``kubectl kustomize`` builds it, valid for Kubernetes 1.34 and the newest
schemas kubernetes-validate ships (strict: unknown fields are errors)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.conftest import missing_service
from workers.backends.kubernetes_site import CONTROL_PLANE_POD_LABELS

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
VERSIONS = ["1.34.0", kubernetes_validate.latest_version()]
MANIFESTS = sorted(p for p in DEPLOY.rglob("*.yaml") if p.name != "kustomization.yaml")


def documents(text: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> list[dict]:
    """The example overlay as kubectl builds it (env files from examples)."""
    kubectl = shutil.which("kubectl")
    if not kubectl:
        missing_service("needs kubectl (its built-in kustomize) on PATH")
    tree = tmp_path_factory.mktemp("deploy") / "kubernetes"
    shutil.copytree(DEPLOY, tree)
    overlay = tree / "overlays" / "example"
    for example in overlay.glob("*.env.example"):
        shutil.copy(example, overlay / example.name.removesuffix(".example"))
    result = subprocess.run(
        [kubectl, "kustomize", str(overlay)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return documents(result.stdout)


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def test_there_are_manifests_to_check():
    assert len(MANIFESTS) >= 10


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_manifest_file_is_valid(path, version):
    for doc in documents(path.read_text()):
        kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize("version", VERSIONS)
def test_the_built_overlay_is_valid(built, version):
    for doc in built:
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_overlay_has_what_an_installation_needs(built):
    kinds = {d["kind"] for d in built}
    assert {
        "Namespace",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "Secret",
        "Job",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "Ingress",
        "NetworkPolicy",
        "PersistentVolumeClaim",
        "ResourceQuota",
    } <= kinds
    deployments = {d["metadata"]["name"]: d for d in by_kind(built, "Deployment")}
    web = deployments["notebook-fleet-web"]
    assert web["spec"]["replicas"] >= 2
    container = web["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"] and container["livenessProbe"]
    beat = deployments["notebook-fleet-beat"]
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"]["type"] == "Recreate"


def test_runtimes_get_their_own_baseline_namespace(built):
    namespaces = {d["metadata"]["name"]: d for d in by_kind(built, "Namespace")}
    runtimes = namespaces["notebooks"]["metadata"]["labels"]
    assert runtimes["pod-security.kubernetes.io/enforce"] == "baseline"
    control = namespaces["notebook-fleet"]["metadata"]["labels"]
    assert control["pod-security.kubernetes.io/enforce"] == "restricted"
    workloads = by_kind(built, "Deployment") + by_kind(built, "Job")
    assert {d["metadata"]["namespace"] for d in workloads} == {"notebook-fleet"}


def test_only_pods_that_reach_runtimes_carry_the_access_label(built):
    """The backend's NetworkPolicy admits pods with these labels; web (the
    /w/ proxy) and the Celery workers (probes) need them, beat does not."""
    carrying = {
        d["metadata"]["name"]
        for d in by_kind(built, "Deployment")
        if CONTROL_PLANE_POD_LABELS.items()
        <= d["spec"]["template"]["metadata"]["labels"].items()
    }
    assert carrying == {"notebook-fleet-web", "notebook-fleet-worker"}


def test_the_runtime_namespace_denies_by_default_and_allows_dns(built):
    policies = {
        d["metadata"]["name"]: d["spec"]
        for d in by_kind(built, "NetworkPolicy")
        if d["metadata"]["namespace"] == "notebooks"
    }
    deny = policies["default-deny"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {
        "Ingress",
        "Egress",
    }
    assert "ingress" not in deny and "egress" not in deny
    dns_ports = policies["allow-dns"]["egress"][0]["ports"]
    assert {(p["protocol"], p["port"]) for p in dns_ports} == {
        ("UDP", 53),
        ("TCP", 53),
    }


def test_rbac_covers_what_the_backend_does_in_the_runtime_namespace(built):
    (role,) = by_kind(built, "Role")
    assert role["metadata"]["namespace"] == "notebooks"
    allowed = {
        (resource, verb)
        for rule in role["rules"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    needed = {
        *[
            (r, v)
            for r in ("pods", "services", "secrets")
            for v in ("create", "get", "list", "delete")
        ],
        ("pods/log", "get"),
        ("events", "list"),
        ("persistentvolumeclaims", "create"),
        ("networkpolicies", "create"),
        ("networkpolicies", "delete"),
        *[("resourceclaims", v) for v in ("create", "get", "list", "update", "delete")],
        # the shared watch: one LIST + one WATCH per kind per process
        *[
            (r, v)
            for r in ("pods", "events", "services", "secrets", "networkpolicies")
            for v in ("list", "watch")
        ],
        ("resourceclaims", "watch"),
    }
    assert needed <= allowed
    assert not any(r == "*" or v == "*" for r, v in allowed)
    (cluster_role,) = by_kind(built, "ClusterRole")
    assert cluster_role["rules"][0]["resources"] == ["priorityclasses"]


def test_the_runtime_namespace_has_an_example_quota_with_dra_devices(built):
    (quota,) = by_kind(built, "ResourceQuota")
    assert quota["metadata"]["namespace"] == "notebooks"
    hard = quota["spec"]["hard"]
    assert "gpu.nvidia.com.deviceclass.resource.k8s.io/devices" in hard
    assert {"count/pods", "count/resourceclaims.resource.k8s.io"} <= hard.keys()
