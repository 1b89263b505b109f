"""GPUs through Dynamic Resource Allocation (``resource.k8s.io/v1``).

A worker with whole GPUs (SM percentage 100) gets its own ResourceClaim.
Workers below 100% share: DRA allocates a claim's devices exclusively, so
two 50% workers with their own claims would hold two whole GPUs. Instead,
workers of one sharing group (GPU profile + model + count) are packed into
a *shared* claim per physical GPU set, configured for NVIDIA MPS, each
pod's container capped by ``CUDA_MPS_ACTIVE_THREAD_PERCENTAGE``. Which
workers hold a shared claim is recorded on the claim (annotation
``SHARES_ANNOTATION``, updated with the claim's resourceVersion, so two
control-plane processes never overfill it); the shares sum to at most 100.
"""

from __future__ import annotations

import json
from typing import Any

from . import naming
from .base import BackendError, ErrorCode, LaunchSpec
from .kubernetes_site import GpuProfile, Site

GPU_REQUEST = "gpu"
MPS_PERCENTAGE_ENV = "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"
SHARES_ANNOTATION = f"{naming.LABEL_PREFIX}/shares"
NVIDIA_CONFIG_API = "resource.nvidia.com/v1beta1"
Manifest = dict[str, Any]


def gpu_profile_for(spec: LaunchSpec, site: Site) -> GpuProfile:
    """The profile of the spec's GPU resource name (or DeviceClass name).
    Raises DEVICE_CLASS_UNAVAILABLE naming the setting to extend."""
    name = spec.resources.gpu_resource_name or "nvidia.com/gpu"
    profile = site.gpu_profiles.get(name)
    if profile is None:
        by_class = {p.device_class: p for p in site.gpu_profiles.values()}
        profile = by_class.get(name)
    if profile is None:
        raise BackendError(
            ErrorCode.DEVICE_CLASS_UNAVAILABLE,
            f"no GPU profile for {name!r}; add it to "
            "NOTEBOOK_RUNTIME_KUBE_GPU_PROFILES (known: "
            f"{', '.join(sorted(site.gpu_profiles))})",
        )
    return profile


def is_shared(spec: LaunchSpec) -> bool:
    r = spec.resources
    return bool(r.gpu_count) and r.gpu_sm_percentage < 100


def sharing_group(spec: LaunchSpec, site: Site) -> str:
    """Workers that may share one claim: same DeviceClass, model and count."""
    r = spec.resources
    profile = gpu_profile_for(spec, site)
    return naming.label_value(
        f"{profile.device_class}-{r.gpu_model or 'any'}-{r.gpu_count}"
    )


def gpu_model_selector(model: str, domain: str) -> str:
    """CEL matching the device's productName in the driver's attribute
    ``domain`` (case-insensitive substring, so "RTX 5090" matches "NVIDIA
    GeForce RTX 5090"). ``model`` is validated to ``[A-Za-z0-9 ._-]`` before
    it gets here, so it cannot break the quoting."""
    return (
        f'device.attributes["{domain}"].productName.lowerAscii()'
        f'.contains("{model.lower()}")'
    )


def _devices(spec: LaunchSpec, profile: GpuProfile, *, mps: bool) -> Manifest:
    r = spec.resources
    exactly: Manifest = {
        "deviceClassName": profile.device_class,
        "allocationMode": "ExactCount",
        "count": r.gpu_count,
    }
    if r.gpu_model:
        selector = gpu_model_selector(r.gpu_model, profile.attribute_domain)
        exactly["selectors"] = [{"cel": {"expression": selector}}]
    devices: Manifest = {"requests": [{"name": GPU_REQUEST, "exactly": exactly}]}
    if mps:
        kind = "MigDeviceConfig" if "mig" in profile.device_class else "GpuConfig"
        parameters = {
            "apiVersion": NVIDIA_CONFIG_API,
            "kind": kind,
            "sharing": {"strategy": "MPS", "mpsConfig": {}},
        }
        devices["config"] = [
            {
                "requests": [GPU_REQUEST],
                "opaque": {"driver": profile.driver, "parameters": parameters},
            }
        ]
    return devices


def resource_claim_manifest(spec: LaunchSpec, labels: dict, site: Site) -> Manifest:
    """A worker's own claim: ``count`` whole devices of its profile's class."""
    profile = gpu_profile_for(spec, site)
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {
            "name": naming.claim_name(spec.worker_id),
            "namespace": site.namespace,
            "labels": labels,
        },
        "spec": {"devices": _devices(spec, profile, mps=False)},
    }


def shared_claim_manifest(
    spec: LaunchSpec, name: str, shares: dict[str, int], site: Site
) -> Manifest:
    """A shared claim of the spec's sharing group, MPS-configured, holding
    ``shares`` (worker id → SM percentage)."""
    profile = gpu_profile_for(spec, site)
    labels = {
        naming.MANAGED_BY_KEY: naming.MANAGED_BY_VALUE,
        naming.SHARED_CLAIM_KEY: sharing_group(spec, site),
        **site.installation_labels(),
    }
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {
            "name": name,
            "namespace": site.namespace,
            "labels": labels,
            "annotations": {SHARES_ANNOTATION: json.dumps(shares, sort_keys=True)},
        },
        "spec": {"devices": _devices(spec, profile, mps=True)},
    }


def claim_shares(claim: Manifest) -> dict[str, int]:
    """Worker id → SM percentage recorded on a shared claim ({} if none)."""
    annotations = (claim.get("metadata") or {}).get("annotations") or {}
    try:
        shares = json.loads(annotations.get(SHARES_ANNOTATION) or "{}")
    except ValueError:
        return {}
    return (
        {str(k): int(v) for k, v in shares.items()} if isinstance(shares, dict) else {}
    )


def pick_shared_claim(
    claims: list[Manifest], worker_id: str, percentage: int
) -> tuple[Manifest | None, bool]:
    """(claim, already_in): the claim already holding ``worker_id``, else the
    first with room for ``percentage`` (shares sum ≤ 100); (None, False) when
    a new claim is needed."""
    ordered = sorted(claims, key=lambda c: c["metadata"]["name"])
    for claim in ordered:
        if worker_id in claim_shares(claim):
            return claim, True
    for claim in ordered:
        deleting = claim["metadata"].get("deletionTimestamp")
        if not deleting and sum(claim_shares(claim).values()) + percentage <= 100:
            return claim, False
    return None, False


def mps_unavailable(text: str) -> bool:
    """A DRA prepare failure caused by MPS sharing being unavailable on the
    node: NVIDIA's driver refuses an MPS config when its ``MPSSupport``
    feature gate is off, and kubelet reports it as FailedPrepareDynamicResources."""
    return "MPSSupport" in text or ("MPS" in text and "feature gate" in text.lower())
