"""Pure functions from a LaunchSpec and a ``Site`` to Kubernetes manifests
(plain dicts).

No API calls here, so every manifest is unit-tested and schema-validated
without a cluster. GPUs come from Dynamic Resource Allocation (see
``kubernetes_gpu``); isolation and priority objects from
``kubernetes_policy``.
"""

from __future__ import annotations

from typing import Any

from . import kubernetes_setup, naming, setup_step
from .base import LaunchSpec, Mount
from .kubernetes_gpu import GPU_REQUEST, MPS_PERCENTAGE_ENV, gpu_profile_for
from .kubernetes_site import DEFAULT_SITE, Site
from .spec import WORKSPACE_PATH, container_environment, ide_command

JUPYTER_LAUNCHER = ("jupyter", "lab")
WORKER_UID = 1000
WORKER_GID = 100
TOKEN_KEY = "token"  # noqa: S105 - the Secret's key name, not a secret
Manifest = dict[str, Any]


def pod_labels(spec: LaunchSpec, site: Site = DEFAULT_SITE) -> dict[str, str]:
    """The spec's labels plus this installation's id, on every object."""
    return naming.runtime_labels(spec) | site.installation_labels()


def _metadata(name: str, namespace: str, labels: dict[str, str]) -> Manifest:
    return {"name": name, "namespace": namespace, "labels": labels}


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
    more: never privileged, no capabilities, no privilege escalation. That
    still fails Pod Security "restricted" (runAsNonRoot), so the runtime
    namespace enforces "baseline" (deploy/kubernetes)."""
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


def mount_claim_name(spec: LaunchSpec, mount: Mount) -> str:
    """The PVC behind a project volume mount: named from the spec's project,
    never the mount's own claim, so a mount can only reach this project's
    volumes (``validate_spec`` refuses a mount of another project)."""
    return naming.project_volume_name(spec.project_id, mount.volume)


def _pvc_volume(name: str, claim: str, read_only: bool = False) -> Manifest:
    source: Manifest = {"claimName": claim}
    if read_only:
        source["readOnly"] = True
    return {"name": name, "persistentVolumeClaim": source}


def _volumes(
    spec: LaunchSpec, site: Site = DEFAULT_SITE
) -> tuple[list[Manifest], list[Manifest]]:
    volumes: list[Manifest] = [{"name": "tmp", "emptyDir": {}}]
    if spec.resources.temp_storage_bytes:
        volumes[0]["emptyDir"]["sizeLimit"] = str(spec.resources.temp_storage_bytes)
    mounts: list[Manifest] = [{"name": "tmp", "mountPath": "/tmp"}]  # noqa: S108
    if spec.resources.workspace_storage_bytes:
        claim = naming.workspace_volume_name(spec.workspace_id)
        volumes.append(_pvc_volume("home", claim))
        mounts.append({"name": "home", "mountPath": WORKSPACE_PATH})
    elif setup_step.wanted(spec):  # the setup step's files reach the IDE
        volumes.append({"name": "home", "emptyDir": {}})
        mounts.append({"name": "home", "mountPath": WORKSPACE_PATH})
    for index, mount in enumerate(spec.mounts):
        name = f"mount-{index}"
        claim = mount_claim_name(spec, mount)
        volumes.append(_pvc_volume(name, claim, mount.read_only))
        mounts.append(
            {"name": name, "mountPath": mount.path, "readOnly": mount.read_only}
        )
    return volumes, mounts


def _probe_path(spec: LaunchSpec) -> str:
    if spec.ide_kind == "code-server":
        return "/healthz"
    if spec.ide_kind == "custom":
        return spec.health_path
    return f"{spec.base_url}api"  # answers without a token once the server is up


def _env(spec: LaunchSpec, site: Site) -> list[Manifest]:
    """The runtime environment; the token comes from the worker's Secret, so
    it never appears in the pod object. A GPU share caps the container's
    MPS client at its SM percentage."""
    secret = naming.runtime_name(spec.worker_id)
    environment = container_environment(spec, port=spec.port)
    if spec.resources.gpu_count and spec.resources.gpu_sm_percentage < 100:
        environment[MPS_PERCENTAGE_ENV] = str(spec.resources.gpu_sm_percentage)
    env = []
    for key, value in sorted(environment.items()):
        if value == spec.access_token:
            ref = {"secretKeyRef": {"name": secret, "key": TOKEN_KEY}}
            env.append({"name": key, "valueFrom": ref})
        else:
            env.append({"name": key, "value": value})
    return env


def _container(spec: LaunchSpec, site: Site, launcher: tuple[str, ...]) -> Manifest:
    _, context = security_context(spec)
    volumes_mounts = _volumes(spec, site)[1]
    container: Manifest = {
        "name": "runtime",
        "image": spec.image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": spec.port}],
        "env": _env(spec, site),
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


def _gpu_placement(spec: LaunchSpec, site: Site, claim: str) -> Manifest:
    """The pod's claim reference and its GPU nodes' tolerations and node
    selector, from the resource class's GPU profile."""
    profile = gpu_profile_for(spec, site)
    placement: Manifest = {
        "resourceClaims": [{"name": GPU_REQUEST, "resourceClaimName": claim}]
    }
    if profile.tolerations:
        placement["tolerations"] = [dict(t) for t in profile.tolerations]
    if profile.node_selector:
        placement["nodeSelector"] = dict(profile.node_selector)
    return placement


def pod_manifest(
    spec: LaunchSpec,
    site: Site = DEFAULT_SITE,
    *,
    launcher: tuple[str, ...] = JUPYTER_LAUNCHER,
    claim: str = "",
) -> Manifest:
    """The worker's pod: one container (after the ``setup`` init container
    for a workspace with a repository), no host namespaces, no service
    account token, the DRA claim ``claim`` (default: the worker's own) for
    GPUs, the priority class of its queue."""
    pod_context, _ = security_context(spec)
    runtime = _container(spec, site, launcher)
    volumes, mounts = _volumes(spec, site)
    pod_spec: Manifest = {
        "containers": [runtime],
        "volumes": volumes,
        "securityContext": pod_context,
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "hostNetwork": False,
        "hostPID": False,
        "hostIPC": False,
        "terminationGracePeriodSeconds": 30,
        # Every queue has its class (``kube_sync_priority_classes``): a pod
        # without one would get priority 0 *and* the right to preempt.
        "priorityClassName": naming.priority_class_name(spec.queue_name),
    }
    if setup_step.wanted(spec):
        home = [m for m in mounts if m["name"] in ("home", "tmp")]
        pod_spec["initContainers"] = [
            kubernetes_setup.init_container(spec, site, runtime, home)
        ]
        pod_spec["volumes"] += kubernetes_setup.volumes(spec, site)
    if site.user_namespaces:
        pod_spec["hostUsers"] = False
    if spec.resources.gpu_count:
        claim = claim or naming.claim_name(spec.worker_id)
        pod_spec |= _gpu_placement(spec, site, claim)
    name = naming.runtime_name(spec.worker_id)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _metadata(name, site.namespace, pod_labels(spec, site)),
        "spec": pod_spec,
    }


def service_manifest(spec: LaunchSpec, site: Site = DEFAULT_SITE) -> Manifest:
    """A ClusterIP service selecting exactly this worker's pod."""
    selector = {naming.WORKER_ID_KEY: naming.label_value(spec.worker_id)}
    name = naming.runtime_name(spec.worker_id)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(name, site.namespace, pod_labels(spec, site)),
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [{"name": "http", "port": spec.port, "targetPort": "http"}],
        },
    }


def secret_manifest(
    spec: LaunchSpec,
    site: Site = DEFAULT_SITE,
    *,
    setup_credentials: dict[str, str] | None = None,
) -> Manifest:
    """The worker's Secret: its token and, with a setup step, the step's
    files and unsealed ``setup_credentials`` (``kubernetes_setup``)."""
    name = naming.runtime_name(spec.worker_id)
    data = {TOKEN_KEY: spec.access_token}
    if setup_step.wanted(spec):
        data |= kubernetes_setup.secret_data(spec, setup_credentials or {})
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": _metadata(name, site.namespace, pod_labels(spec, site)),
        "stringData": data,
    }


def _shared_labels(spec: LaunchSpec, site: Site) -> dict[str, str]:
    """Labels of an object shared by workers (no worker id)."""
    labels = pod_labels(spec, site)
    labels.pop(naming.WORKER_ID_KEY)
    return labels


def workspace_pvc_manifest(spec: LaunchSpec, site: Site = DEFAULT_SITE) -> Manifest:
    """The workspace's home volume; it outlives every worker (never deleted
    by terminate)."""
    name = naming.workspace_volume_name(spec.workspace_id)
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _metadata(name, site.namespace, _shared_labels(spec, site)),
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {
                "requests": {"storage": str(spec.resources.workspace_storage_bytes)}
            },
        },
    }


def project_volume_pvc_manifest(
    spec: LaunchSpec, mount: Mount, site: Site = DEFAULT_SITE
) -> Manifest:
    """A project volume's PVC, made when missing from the volume's size and
    storage class; shared by the project's workspaces, never deleted by
    terminate. Labelled with the project, not a worker or workspace."""
    labels = {
        naming.MANAGED_BY_KEY: naming.MANAGED_BY_VALUE,
        naming.PROJECT_ID_KEY: naming.label_value(spec.project_id),
        naming.VOLUME_KEY: naming.label_value(mount.volume),
        **site.installation_labels(),
    }
    pvc_spec: Manifest = {
        "accessModes": [site.volume_access_mode],
        "resources": {"requests": {"storage": str(mount.size_bytes)}},
    }
    if mount.storage_class:
        pvc_spec["storageClassName"] = mount.storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _metadata(mount_claim_name(spec, mount), site.namespace, labels),
        "spec": pvc_spec,
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
