"""Pure functions from a LaunchSpec to Kubernetes manifests (plain dicts).

No API calls here, so every manifest is unit-tested and schema-validated
without a cluster. GPUs come from Dynamic Resource Allocation: one
``resource.k8s.io/v1`` ResourceClaim per worker, referenced from the pod.
"""

from __future__ import annotations

from typing import Any

from . import naming
from .base import LaunchSpec
from .spec import WORKSPACE_PATH, container_environment, ide_command

DEFAULT_DEVICE_CLASS = "gpu.nvidia.com"
GPU_REQUEST = "gpu"
JUPYTER_LAUNCHER = ("jupyter", "lab")
WORKER_UID = 1000
WORKER_GID = 100
TOKEN_KEY = "token"  # noqa: S105 - the Secret's key name, not a secret
Manifest = dict[str, Any]


def pod_labels(spec: LaunchSpec) -> dict[str, str]:
    return naming.runtime_labels(spec)


def _metadata(name: str, namespace: str, labels: dict[str, str]) -> Manifest:
    return {"name": name, "namespace": namespace, "labels": labels}


def device_class_for(spec: LaunchSpec, default: str = DEFAULT_DEVICE_CLASS) -> str:
    """``gpu_resource_name`` names the DeviceClass when it is one (a DNS
    subdomain like ``gpu.nvidia.com``); device-plugin names such as
    ``nvidia.com/gpu`` fall back to ``default``."""
    name = spec.resources.gpu_resource_name
    return name if name and "/" not in name else default


def gpu_model_selector(model: str, driver: str) -> str:
    """CEL matching the device's productName (case-insensitive substring, so
    "RTX 5090" matches "NVIDIA GeForce RTX 5090"). ``model`` is validated to
    ``[A-Za-z0-9 ._-]`` before it gets here, so it cannot break the quoting."""
    return (
        f'device.attributes["{driver}"].productName.lowerAscii()'
        f'.contains("{model.lower()}")'
    )


def resource_claim_manifest(
    spec: LaunchSpec, *, namespace: str, device_class: str = DEFAULT_DEVICE_CLASS
) -> Manifest:
    """The ResourceClaim for a GPU worker: ``count`` devices of the class,
    model selected by CEL; an SM percentage under 100 becomes the driver's
    MPS active-thread percentage (the effective-usage share)."""
    r = spec.resources
    driver = device_class_for(spec, device_class)
    exactly: Manifest = {
        "deviceClassName": driver,
        "allocationMode": "ExactCount",
        "count": r.gpu_count,
    }
    if r.gpu_model:
        exactly["selectors"] = [
            {"cel": {"expression": gpu_model_selector(r.gpu_model, driver)}}
        ]
    devices: Manifest = {"requests": [{"name": GPU_REQUEST, "exactly": exactly}]}
    if r.gpu_sm_percentage < 100:
        devices["config"] = [
            {
                "requests": [GPU_REQUEST],
                "opaque": {
                    "driver": driver,
                    "parameters": {
                        "apiVersion": "resource.nvidia.com/v1beta1",
                        "kind": "GpuConfig",
                        "sharing": {
                            "strategy": "MPS",
                            "mpsConfig": {
                                "defaultActiveThreadPercentage": r.gpu_sm_percentage
                            },
                        },
                    },
                },
            }
        ]
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": _metadata(
            naming.claim_name(spec.worker_id), namespace, pod_labels(spec)
        ),
        "spec": {"devices": devices},
    }


def _resources(spec: LaunchSpec) -> Manifest:
    r = spec.resources
    requests = {
        "cpu": f"{r.cpu_request_millicores}m",
        "memory": str(r.memory_request_bytes),
    }
    limits = {"cpu": f"{r.cpu_limit_millicores}m", "memory": str(r.memory_limit_bytes)}
    if r.temp_storage_bytes:
        requests["ephemeral-storage"] = limits["ephemeral-storage"] = str(
            r.temp_storage_bytes
        )
    resources: Manifest = {"requests": requests, "limits": limits}
    if r.gpu_count:
        resources["claims"] = [{"name": GPU_REQUEST}]
    return resources


def security_context(spec: LaunchSpec) -> tuple[Manifest, Manifest]:
    """(pod, container) security contexts. A root shell is UID 0 and nothing
    more: never privileged, no capabilities, no privilege escalation."""
    uid = 0 if spec.root_shell else WORKER_UID
    pod = {
        "runAsUser": uid,
        "runAsGroup": 0 if spec.root_shell else WORKER_GID,
        "runAsNonRoot": not spec.root_shell,
        "fsGroup": WORKER_GID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    container = {
        "privileged": False,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    return pod, container


def _volumes(spec: LaunchSpec) -> tuple[list[Manifest], list[Manifest]]:
    volumes: list[Manifest] = [{"name": "tmp", "emptyDir": {}}]
    if spec.resources.temp_storage_bytes:
        volumes[0]["emptyDir"]["sizeLimit"] = str(spec.resources.temp_storage_bytes)
    mounts: list[Manifest] = [{"name": "tmp", "mountPath": "/tmp"}]  # noqa: S108
    if spec.resources.workspace_storage_bytes:
        volumes.append(
            {
                "name": "home",
                "persistentVolumeClaim": {
                    "claimName": naming.workspace_volume_name(spec.workspace_id)
                },
            }
        )
        mounts.append({"name": "home", "mountPath": WORKSPACE_PATH})
    for index, mount in enumerate(spec.mounts):
        volumes.append(
            {
                "name": f"mount-{index}",
                "persistentVolumeClaim": {
                    "claimName": mount.volume,
                    "readOnly": mount.read_only,
                },
            }
        )
        mounts.append(
            {
                "name": f"mount-{index}",
                "mountPath": mount.path,
                "readOnly": mount.read_only,
            }
        )
    return volumes, mounts


def _probe_path(spec: LaunchSpec) -> str:
    if spec.ide_kind == "code-server":
        return "/healthz"
    if spec.ide_kind == "custom":
        return spec.health_path
    return f"{spec.base_url}api"  # answers without a token once the server is up


def _env(spec: LaunchSpec) -> list[Manifest]:
    """The runtime environment; the token comes from the worker's Secret, so
    it never appears in the pod object."""
    secret = naming.runtime_name(spec.worker_id)
    env = []
    for key, value in sorted(container_environment(spec, port=spec.port).items()):
        if value == spec.access_token:
            ref = {"secretKeyRef": {"name": secret, "key": TOKEN_KEY}}
            env.append({"name": key, "valueFrom": ref})
        else:
            env.append({"name": key, "value": value})
    return env


def _container(spec: LaunchSpec, launcher: tuple[str, ...]) -> Manifest:
    _, context = security_context(spec)
    volumes_mounts = _volumes(spec)[1]
    container: Manifest = {
        "name": "runtime",
        "image": spec.image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": spec.port}],
        "env": _env(spec),
        "resources": _resources(spec),
        "securityContext": context,
        "volumeMounts": volumes_mounts,
        "workingDir": WORKSPACE_PATH,
        "readinessProbe": {
            "httpGet": {"path": _probe_path(spec), "port": "http"},
            "periodSeconds": 5,
            "failureThreshold": 3,
        },
    }
    command = ide_command(
        spec,
        launcher=launcher,
        ip="0.0.0.0",  # noqa: S104 - inside the pod's own network namespace
        port=spec.port,
        root_dir=WORKSPACE_PATH,
        as_root=spec.root_shell,
    )
    if command:
        container["command"] = command
    return container


def pod_manifest(
    spec: LaunchSpec, *, namespace: str, launcher: tuple[str, ...] = JUPYTER_LAUNCHER
) -> Manifest:
    """The worker's pod: one container, no host namespaces, no service
    account token, DRA claim for GPUs, priority class per queue."""
    pod_context, _ = security_context(spec)
    pod_spec: Manifest = {
        "containers": [_container(spec, launcher)],
        "volumes": _volumes(spec)[0],
        "securityContext": pod_context,
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "hostNetwork": False,
        "hostPID": False,
        "hostIPC": False,
        "terminationGracePeriodSeconds": 30,
    }
    if spec.queue_priority:
        pod_spec["priorityClassName"] = naming.priority_class_name(spec.queue_name)
    if spec.resources.gpu_count:
        pod_spec["resourceClaims"] = [
            {
                "name": GPU_REQUEST,
                "resourceClaimName": naming.claim_name(spec.worker_id),
            }
        ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _metadata(
            naming.runtime_name(spec.worker_id), namespace, pod_labels(spec)
        ),
        "spec": pod_spec,
    }


def service_manifest(spec: LaunchSpec, *, namespace: str) -> Manifest:
    """A ClusterIP service selecting exactly this worker's pod."""
    selector = {naming.WORKER_ID_KEY: naming.label_value(spec.worker_id)}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(
            naming.runtime_name(spec.worker_id), namespace, pod_labels(spec)
        ),
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [{"name": "http", "port": spec.port, "targetPort": "http"}],
        },
    }


def secret_manifest(spec: LaunchSpec, *, namespace: str) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": _metadata(
            naming.runtime_name(spec.worker_id), namespace, pod_labels(spec)
        ),
        "stringData": {TOKEN_KEY: spec.access_token},
    }


def workspace_pvc_manifest(spec: LaunchSpec, *, namespace: str) -> Manifest:
    """The workspace's home volume; it outlives every worker (never deleted
    by terminate)."""
    labels = naming.runtime_labels(spec)
    labels.pop(naming.WORKER_ID_KEY)
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _metadata(
            naming.workspace_volume_name(spec.workspace_id), namespace, labels
        ),
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {
                "requests": {"storage": str(spec.resources.workspace_storage_bytes)}
            },
        },
    }


def is_gpu_bound(pod: Manifest) -> bool:
    """A GPU workspace is bound only when its pod carries both the platform
    DRA labels and ``spec.resourceClaims``; labels alone mean the platform
    sees it, but no GPU is attached."""
    labels = (pod.get("metadata") or {}).get("labels") or {}
    has_labels = (
        labels.get(naming.DRA_KEY) == "true"
        and int(labels.get(naming.GPU_COUNT_KEY, "0") or 0) > 0
    )
    claims = (pod.get("spec") or {}).get("resourceClaims") or []
    return has_labels and bool(claims)
