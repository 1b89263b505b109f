"""Kubernetes backend: a Pod, Service and Secret per worker (+ a DRA
ResourceClaim for GPUs, + the workspace's PVC, kept across workers).

Manifests come from ``kubernetes_manifests`` (pure); this module only talks
to the API, through the official client with raw JSON in and out. Every call
has a timeout and no client-side retries: the task layer owns retry policy,
and an API that does not answer makes ``observe`` say UNKNOWN, never FAILED.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from . import kubernetes_manifests as manifests
from . import naming
from .base import (
    BackendError,
    ErrorCode,
    LaunchSpec,
    Observation,
    Phase,
    RuntimeBackend,
    RuntimeRef,
)
from .kubernetes_status import error_from_api, observation_from_pod
from .spec import validate_spec

TRANSPORT_ERRORS = (urllib3.exceptions.HTTPError, OSError)


class KubernetesBackend(RuntimeBackend):
    """``endpoint_mode``: "service" (``http://<svc>.<ns>.svc:<port>``, for a
    control plane inside the cluster) or "pod-ip" (``http://<podIP>:<port>``)."""

    name = "kubernetes"

    def __init__(
        self,
        configuration: k8s.Configuration,
        *,
        namespace: str = "notebooks",
        endpoint_mode: str = "service",
        device_class: str = manifests.DEFAULT_DEVICE_CLASS,
        launcher: tuple[str, ...] = manifests.JUPYTER_LAUNCHER,
        request_timeout: float = 5.0,
    ):
        configuration = copy.copy(configuration)
        configuration.retries = False  # read when the client is made; tasks retry
        api_client = k8s.ApiClient(configuration)
        self.core = k8s.CoreV1Api(api_client)
        self.resource = k8s.ResourceV1Api(api_client)
        self.namespace = namespace
        self.endpoint_mode = endpoint_mode
        self.device_class = device_class
        self.launcher = launcher
        self.timeout = request_timeout

    @classmethod
    def from_config(cls, kubeconfig: str = "", **options: Any) -> KubernetesBackend:
        """In-cluster config when running in a pod, else ``kubeconfig``."""
        from kubernetes import config

        configuration = k8s.Configuration()
        try:
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException:
            try:
                config.load_kube_config(
                    config_file=kubeconfig or None, client_configuration=configuration
                )
            except (config.ConfigException, OSError) as exc:
                raise BackendError(
                    ErrorCode.GATEWAY_UNREACHABLE,
                    "no Kubernetes configuration: run in a pod with a service "
                    f"account or set KUBECONFIG ({exc})",
                ) from exc
        return cls(configuration, **options)

    # --- contract -----------------------------------------------------------

    def launch(self, spec: LaunchSpec) -> RuntimeRef:
        """Create (or adopt) PVC, Secret, ResourceClaim, Pod and Service, in
        that order. Each 409 is adopted when the object carries this worker's
        label, else CONFLICT. 403 "exceeded quota" raises QUOTA_EXCEEDED. A
        launch that fails halfway leaves the objects made so far; the
        orchestrator's terminate after a failed start removes them."""
        validate_spec(spec)
        ns = self.namespace
        core, resource = self.core, self.resource
        if spec.resources.workspace_storage_bytes:
            self._create(
                core.create_namespaced_persistent_volume_claim,
                core.read_namespaced_persistent_volume_claim,
                manifests.workspace_pvc_manifest(spec, namespace=ns),
                spec,
                shared=True,
            )
        self._create(
            core.create_namespaced_secret,
            core.read_namespaced_secret,
            manifests.secret_manifest(spec, namespace=ns),
            spec,
        )
        if spec.resources.gpu_count:
            claim = manifests.resource_claim_manifest(
                spec, namespace=ns, device_class=self.device_class
            )
            self._create(
                resource.create_namespaced_resource_claim,
                resource.read_namespaced_resource_claim,
                claim,
                spec,
            )
        self._create(
            core.create_namespaced_pod,
            core.read_namespaced_pod,
            manifests.pod_manifest(spec, namespace=ns, launcher=self.launcher),
            spec,
        )
        self._create(
            core.create_namespaced_service,
            core.read_namespaced_service,
            manifests.service_manifest(spec, namespace=ns),
            spec,
        )
        return self._ref(spec.worker_id, spec.port)

    def observe(self, ref: RuntimeRef) -> Observation:
        """Pod phase, container waiting reasons and the pod's events (one
        pod GET + one event LIST). 404 is NOT_FOUND; timeouts, 5xx and a
        refused connection are UNKNOWN."""
        try:
            pod = self._call(self.core.read_namespaced_pod, ref.name, ref.namespace)
            events = self._events(ref)
        except ApiException as exc:
            if exc.status == 404:
                return Observation(Phase.NOT_FOUND, message="pod not found")
            return Observation(Phase.UNKNOWN, message=f"API answered {exc.status}")
        except TRANSPORT_ERRORS as exc:
            return Observation(Phase.UNKNOWN, message=f"API unreachable: {exc}")
        port = int(ref.extra.get("port", 8888))
        return observation_from_pod(pod, events, self._endpoint(ref, pod, port))

    def terminate(self, ref: RuntimeRef) -> None:
        """Delete Pod, Service, Secret and ResourceClaim; 404 is success. The
        workspace PVC stays. Raises GATEWAY_UNREACHABLE (retryable) when the
        API cannot be reached."""
        ns = ref.namespace
        self._delete(self.core.delete_namespaced_pod, ref.name, ns)
        self._delete(self.core.delete_namespaced_service, ref.name, ns)
        self._delete(self.core.delete_namespaced_secret, ref.name, ns)
        self._delete(
            self.resource.delete_namespaced_resource_claim,
            naming.claim_name(ref.worker_id),
            ns,
        )

    def list_managed(self) -> list[RuntimeRef]:
        """One pod LIST by the managed-by label selector."""
        body = self._guarded(
            self.core.list_namespaced_pod,
            self.namespace,
            label_selector=naming.MANAGED_SELECTOR,
        )
        refs = []
        for pod in body.get("items", []):
            meta = pod["metadata"]
            worker_id = meta.get("labels", {}).get(naming.WORKER_ID_KEY, "")
            refs.append(
                RuntimeRef(
                    self.name,
                    worker_id,
                    meta["name"],
                    meta.get("namespace", self.namespace),
                    extra={"port": _container_port(pod)},
                )
            )
        return refs

    def logs(self, ref: RuntimeRef, tail: int = 100) -> str:
        try:
            response = self.core.read_namespaced_pod_log(
                ref.name,
                ref.namespace,
                tail_lines=tail,
                _preload_content=False,
                _request_timeout=self.timeout,
            )
            return response.data.decode(errors="replace")
        except ApiException as exc:
            if exc.status in (400, 404):  # gone, or container not started yet
                return ""
            raise error_from_api(exc) from exc
        except TRANSPORT_ERRORS as exc:
            raise _unreachable(exc) from exc

    # --- helpers --------------------------------------------------------------

    def _ref(self, worker_id: str, port: int) -> RuntimeRef:
        return RuntimeRef(
            self.name,
            worker_id,
            naming.runtime_name(worker_id),
            self.namespace,
            extra={"port": port},
        )

    def _call(self, method: Callable, *args: Any, **kwargs: Any) -> dict:
        response = method(
            *args, _preload_content=False, _request_timeout=self.timeout, **kwargs
        )
        return json.loads(response.data or b"{}")

    def _guarded(self, method: Callable, *args: Any, **kwargs: Any) -> dict:
        """``_call`` with API and transport errors as ``BackendError``."""
        try:
            return self._call(method, *args, **kwargs)
        except ApiException as exc:
            raise error_from_api(exc) from exc
        except TRANSPORT_ERRORS as exc:
            raise _unreachable(exc) from exc

    def _create(
        self,
        create: Callable,
        read: Callable,
        body: dict,
        spec: LaunchSpec,
        shared: bool = False,
    ) -> None:
        """POST ``body``; on 409 adopt the existing object if it is this
        worker's (or, ``shared``, this workspace's), else CONFLICT."""
        try:
            self._call(create, self.namespace, body)
        except ApiException as exc:
            if exc.status != 409:
                raise error_from_api(exc) from exc
            self._adopt(read, body, spec, shared)
        except TRANSPORT_ERRORS as exc:
            raise _unreachable(exc) from exc

    def _adopt(
        self, read: Callable, body: dict, spec: LaunchSpec, shared: bool
    ) -> None:
        existing = self._guarded(read, body["metadata"]["name"], self.namespace)
        labels = existing.get("metadata", {}).get("labels") or {}
        key, value = (
            (naming.WORKSPACE_ID_KEY, spec.workspace_id)
            if shared
            else (naming.WORKER_ID_KEY, spec.worker_id)
        )
        managed = labels.get(naming.MANAGED_BY_KEY) == naming.MANAGED_BY_VALUE
        if not managed or labels.get(key) != naming.label_value(value):
            raise BackendError(
                ErrorCode.CONFLICT,
                f"{body['kind']} {body['metadata']['name']} exists and is not "
                f"this worker's; delete it or pick another worker id",
            )

    def _delete(self, method: Callable, name: str, namespace: str) -> None:
        try:
            self._call(method, name, namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise error_from_api(exc) from exc
        except TRANSPORT_ERRORS as exc:
            raise _unreachable(exc) from exc

    def _events(self, ref: RuntimeRef) -> list[dict]:
        selector = f"involvedObject.name={ref.name}"
        body = self._call(
            self.core.list_namespaced_event, ref.namespace, field_selector=selector
        )
        return body.get("items", [])

    def _endpoint(self, ref: RuntimeRef, pod: dict, port: int) -> str:
        base_url = _env_value(pod, "NOTEBOOK_FLEET_BASE_URL")
        if self.endpoint_mode == "pod-ip":
            ip = (pod.get("status") or {}).get("podIP")
            return f"http://{ip}:{port}{base_url}" if ip else ""
        return f"http://{ref.name}.{ref.namespace}.svc:{port}{base_url}"


def _unreachable(exc: Exception) -> BackendError:
    return BackendError(
        ErrorCode.GATEWAY_UNREACHABLE,
        f"Kubernetes API unreachable: {exc}",
        retryable=True,
    )


def _container_port(pod: dict) -> int:
    for container in pod.get("spec", {}).get("containers", []):
        for port in container.get("ports", []):
            return int(port["containerPort"])
    return 8888


def _env_value(pod: dict, name: str) -> str:
    for container in pod.get("spec", {}).get("containers", []):
        for item in container.get("env", []):
            if item.get("name") == name:
                return item.get("value", "")
    return "/"
