"""Kubernetes backend: per worker a Pod, Service, Secret and NetworkPolicy
(+ a DRA ResourceClaim for GPUs, own or shared), plus the workspace's and
the project's PVCs, which outlive workers.

Manifests come from ``kubernetes_manifests`` (pure); this module only talks
to the API, through the official client with raw JSON in and out. Every call
has a timeout and no client-side retries: the task layer owns retry policy,
and an API that does not answer makes ``observe`` say UNKNOWN, never FAILED.
Every object carries the installation's labels (``Site.selector``), so
``list_runtimes`` finds every kind, and two control planes sharing a
namespace never touch each other's objects.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from . import kubernetes_gpu as gpu
from . import kubernetes_manifests as manifests
from . import kubernetes_setup, naming, setup_step
from .base import (
    BackendError,
    ErrorCode,
    LaunchSpec,
    ListedRuntime,
    Observation,
    Phase,
    RuntimeBackend,
    RuntimeRef,
)
from .kubernetes_policy import network_policy_manifest
from .kubernetes_priority import priority_classes_sync
from .kubernetes_sharing import SharedClaims
from .kubernetes_site import Site
from .kubernetes_status import (
    TRANSPORT_ERRORS,
    error_from_api,
    event_lines,
    listed_phase,
    observation_from_pod,
)
from .kubernetes_status import unreachable as _unreachable
from .kubernetes_watch import LEFTOVER_KINDS, RuntimeWatch
from .spec import validate_spec

SERVICE_ACCOUNT_NAMESPACE = Path(
    "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
)


class KubernetesBackend(RuntimeBackend):
    """``endpoint_mode``: "service" (``http://<svc>.<ns>.svc:<port>``, for a
    control plane inside the cluster) or "pod-ip" (``http://<podIP>:<port>``).
    Refuses (INTERNAL) to run runtimes in the control plane's namespace."""

    name = "kubernetes"

    def __init__(
        self,
        configuration: k8s.Configuration,
        *,
        site: Site | None = None,
        namespace: str = "",
        endpoint_mode: str = "service",
        launcher: tuple[str, ...] = manifests.JUPYTER_LAUNCHER,
        request_timeout: float = 5.0,
        watch: bool = False,
        unseal: setup_step.Unseal | None = None,
    ):
        site = site or Site()
        if namespace:
            site = dataclasses.replace(site, namespace=namespace)
        if site.namespace == site.control_plane_namespace:
            raise BackendError(
                ErrorCode.INTERNAL,
                f"runtimes must run in their own namespace, not the control "
                f"plane's ({site.namespace}); set NOTEBOOK_RUNTIME_KUBE_NAMESPACE",
            )
        configuration = copy.copy(configuration)
        configuration.retries = False  # read when the client is made; tasks retry
        api_client = k8s.ApiClient(configuration)
        self.core = k8s.CoreV1Api(api_client)
        self.resource = k8s.ResourceV1Api(api_client)
        self.networking = k8s.NetworkingV1Api(api_client)
        self.scheduling = k8s.SchedulingV1Api(api_client)
        self.site = site
        self.namespace = site.namespace
        self.endpoint_mode = endpoint_mode
        self.launcher = launcher
        self.timeout = request_timeout
        self.unseal = unseal  # the setup step's credentials, into its Secret
        self.sharing = SharedClaims(self)
        self.watch = (
            RuntimeWatch(self.core, self.networking, self.resource, site, self.timeout)
            if watch
            else None
        )

    @classmethod
    def from_config(cls, kubeconfig: str = "", **options: Any) -> KubernetesBackend:
        """In-cluster config when running in a pod (the control plane's
        namespace is then the pod's), else ``kubeconfig``."""
        from kubernetes import config

        configuration = k8s.Configuration()
        try:
            config.load_incluster_config(client_configuration=configuration)
            site = options.get("site") or Site()
            if SERVICE_ACCOUNT_NAMESPACE.exists():
                own = SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
                options["site"] = dataclasses.replace(site, control_plane_namespace=own)
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

    def _watching(self) -> bool:
        """The shared watch, started on first use, is in sync (until then,
        and while it is down, callers ask the API)."""
        return self.watch is not None and self.watch.active()

    def close(self) -> None:
        """Stop the shared watch (tests, shutdown)."""
        if self.watch is not None:
            self.watch.close()

    # --- contract -----------------------------------------------------------

    def launch(self, spec: LaunchSpec) -> RuntimeRef:
        """Create (or adopt) PVCs, Secret, ResourceClaim (or a place in a
        shared one), NetworkPolicy, Pod and Service, in that order. Each 409
        is adopted when the object carries this worker's label, else
        CONFLICT. 403 "exceeded quota" raises QUOTA_EXCEEDED, a missing
        PriorityClass PRIORITY_CLASS_MISSING. A launch that fails halfway
        leaves labelled objects: terminate, or reconcile after the grace
        period, removes them."""
        validate_spec(spec)
        site, core = self.site, self.core
        if spec.resources.gpu_count:
            gpu.gpu_profile_for(spec, site)  # unknown profile: fail before creating
        self._create_volumes(spec)
        self._create(
            core.create_namespaced_secret,
            core.read_namespaced_secret,
            manifests.secret_manifest(
                spec,
                site,
                setup_credentials=setup_step.secret_files(spec, self.unseal),
            ),
            spec,
        )
        claim = self._create_claim(spec)
        self._create(
            self.networking.create_namespaced_network_policy,
            self.networking.read_namespaced_network_policy,
            network_policy_manifest(spec, manifests.pod_labels(spec, site), site),
            spec,
        )
        pod = manifests.pod_manifest(spec, site, launcher=self.launcher, claim=claim)
        created = self._create(
            core.create_namespaced_pod, core.read_namespaced_pod, pod, spec
        )
        if created and self.watch is not None:
            self.watch.pods.remember(created)
        self._create(
            core.create_namespaced_service,
            core.read_namespaced_service,
            manifests.service_manifest(spec, site),
            spec,
        )
        return self._ref(spec.worker_id, spec.port)

    def observe(self, ref: RuntimeRef) -> Observation:
        """Pod phase, container waiting reasons and the pod's events: from
        the shared watch when it is in sync (no request), else one pod GET
        + one event LIST (also for a pod the watch does not hold: gone, or
        another installation's). 404 is NOT_FOUND; timeouts, 5xx and a
        refused connection are UNKNOWN."""
        port = int(ref.extra.get("port", 8888))
        if self._watching() and ref.namespace == self.namespace:
            cached = self.watch.pods.get(ref.name)
            if cached:
                events = self.watch.events.get(ref.name)
                pod = cached[-1]
                return self._observation(ref, pod, events, port)
        try:
            pod = self._call(self.core.read_namespaced_pod, ref.name, ref.namespace)
            events = self._events(ref)
        except ApiException as exc:
            if exc.status == 404:
                return Observation(Phase.NOT_FOUND, message="pod not found")
            return Observation(Phase.UNKNOWN, message=f"API answered {exc.status}")
        except TRANSPORT_ERRORS as exc:
            return Observation(Phase.UNKNOWN, message=f"API unreachable: {exc}")
        return self._observation(ref, pod, events, port)

    def terminate(self, ref: RuntimeRef) -> None:
        """Delete Pod, Service, Secret, NetworkPolicy and the worker's own
        ResourceClaim, and release its share of a shared claim (deleted with
        its last user); 404 is success. The pod is deleted gracefully:
        ``observe`` says TERMINATING until it is gone. PVCs stay. Raises
        GATEWAY_UNREACHABLE (retryable) when the API cannot be reached."""
        ns = ref.namespace
        self._delete(self.core.delete_namespaced_pod, ref.name, ns)
        self._delete(self.core.delete_namespaced_service, ref.name, ns)
        self._delete(self.core.delete_namespaced_secret, ref.name, ns)
        self._delete(self.networking.delete_namespaced_network_policy, ref.name, ns)
        self._delete(
            self.resource.delete_namespaced_resource_claim,
            naming.claim_name(ref.worker_id),
            ns,
        )
        self.sharing.release(ref.worker_id, ns)

    def list_runtimes(self) -> list[ListedRuntime]:
        """This installation's pods and other per-worker kinds, each from the
        shared watch when it is in sync (no request: a reconcile pass makes
        no LIST once the watches are warm), else one LIST by this
        installation's labels. Pods give the phase (a Succeeded or Failed
        pod carries its exit code; a pod being deleted is TERMINATING); a
        worker with leftover objects but no pod (a half-finished launch or
        removal, or a share of a shared GPU claim still held) is listed as
        NOT_FOUND, so reconcile removes what is left."""
        listed = {}
        for pod in self._items("Pod"):
            ref = self._listed_ref(pod, port=_container_port(pod))
            listed[ref.worker_id] = ListedRuntime(ref, *listed_phase(pod))
        for kind in LEFTOVER_KINDS:
            for item in self._items(kind):
                for worker_id in _holders(item):
                    if worker_id not in listed:
                        message = f"leftover {kind} without a pod"
                        ref = self._ref(worker_id, 8888)
                        listed[worker_id] = ListedRuntime(ref, Phase.NOT_FOUND, message)
        return list(listed.values())

    def priority_classes_sync(self, queues: list[dict]) -> list[str]:
        """Create or update ``notebook-fleet-<queue>`` for each queue (see
        ``kubernetes_priority``); returns the class names."""
        return priority_classes_sync(self, queues)

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

    def _observation(
        self, ref: RuntimeRef, pod: dict, events: list[dict], port: int
    ) -> Observation:
        """``observation_from_pod``; while the pod runs its setup step, or
        once that failed, the step's progress or failure instead, from the
        init container's log (a request made only then)."""
        if kubernetes_setup.setup_state(pod)[0]:
            log = self._setup_log(ref)
            return kubernetes_setup.setup_observation(pod, event_lines(events), log)
        return observation_from_pod(pod, events, self._endpoint(ref, pod, port))

    def _setup_log(self, ref: RuntimeRef) -> str:
        """The setup init container's output ("" when it cannot be read)."""
        try:
            response = self.core.read_namespaced_pod_log(
                ref.name,
                ref.namespace,
                container=kubernetes_setup.CONTAINER,
                tail_lines=200,
                _preload_content=False,
                _request_timeout=self.timeout,
            )
        except (ApiException, *TRANSPORT_ERRORS):
            return ""
        return response.data.decode(errors="replace")

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
        owner: tuple[str, str] | None = None,
    ) -> dict | None:
        """POST ``body`` and return what the API made; on 409 adopt the
        existing object (returns None) if it is this installation's and
        carries ``owner`` (label key, value; default this worker's id), else
        CONFLICT."""
        try:
            return self._call(create, self.namespace, body)
        except ApiException as exc:
            if exc.status != 409:
                raise error_from_api(exc) from exc
            owner = owner or (naming.WORKER_ID_KEY, spec.worker_id)
            self._adopt(read, body, owner)
        except TRANSPORT_ERRORS as exc:
            raise _unreachable(exc) from exc
        return None

    def _adopt(self, read: Callable, body: dict, owner: tuple[str, str]) -> None:
        existing = self._guarded(read, body["metadata"]["name"], self.namespace)
        labels = existing.get("metadata", {}).get("labels") or {}
        ours = self.site.installation_labels() | {
            naming.MANAGED_BY_KEY: naming.MANAGED_BY_VALUE,
            owner[0]: naming.label_value(owner[1]),
        }
        if any(labels.get(k) != v for k, v in ours.items()):
            raise BackendError(
                ErrorCode.CONFLICT,
                f"{body['kind']} {body['metadata']['name']} exists and is not "
                f"this worker's; delete it or pick another worker id",
            )

    def _create_volumes(self, spec: LaunchSpec) -> None:
        """The workspace's home and each mounted project volume, made from
        the volume's size and storage class when missing; adopted when they
        are this workspace's / this project's."""
        core = self.core
        create = core.create_namespaced_persistent_volume_claim
        read = core.read_namespaced_persistent_volume_claim
        if spec.resources.workspace_storage_bytes:
            home = manifests.workspace_pvc_manifest(spec, self.site)
            self._create(
                create, read, home, spec, (naming.WORKSPACE_ID_KEY, spec.workspace_id)
            )
        for mount in spec.mounts:
            body = manifests.project_volume_pvc_manifest(spec, mount, self.site)
            self._create(
                create, read, body, spec, (naming.PROJECT_ID_KEY, spec.project_id)
            )

    def _create_claim(self, spec: LaunchSpec) -> str:
        """The claim the pod references: a place in a shared claim below
        100%, else the worker's own claim ("" without GPUs)."""
        if not spec.resources.gpu_count:
            return ""
        if gpu.is_shared(spec):
            return self.sharing.join(spec)
        labels = manifests.pod_labels(spec, self.site)
        claim = gpu.resource_claim_manifest(spec, labels, self.site)
        self._create(
            self.resource.create_namespaced_resource_claim,
            self.resource.read_namespaced_resource_claim,
            claim,
            spec,
        )
        return claim["metadata"]["name"]

    def _list(self, method: Callable, **selector: str) -> list[dict]:
        """Items of one LIST in the runtime namespace by this installation's
        labels (plus ``selector``'s label_selector terms)."""
        terms = ",".join(filter(None, [self.site.selector, *selector.values()]))
        body = self._guarded(method, self.namespace, label_selector=terms)
        return body.get("items", [])

    def _items(self, kind: str) -> list[dict]:
        """This installation's objects of ``kind`` ("Pod" or one of
        ``LEFTOVER_KINDS``): the shared watch's when in sync, else a LIST."""
        cached = self.watch.cached(kind) if self.watch is not None else None
        if cached is not None:
            return cached
        lists = {
            "Pod": self.core.list_namespaced_pod,
            "Service": self.core.list_namespaced_service,
            "Secret": self.core.list_namespaced_secret,
            "NetworkPolicy": self.networking.list_namespaced_network_policy,
            "ResourceClaim": self.resource.list_namespaced_resource_claim,
        }
        return self._list(lists[kind])

    def _listed_ref(self, item: dict, *, port: int) -> RuntimeRef:
        meta = item["metadata"]
        worker_id = (meta.get("labels") or {}).get(naming.WORKER_ID_KEY, "")
        return RuntimeRef(
            self.name,
            worker_id,
            naming.runtime_name(worker_id) if worker_id else meta["name"],
            meta.get("namespace", self.namespace),
            extra={"port": port},
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


def _holders(item: dict) -> list[str]:
    """The workers an object belongs to: its worker label, or for a shared
    GPU claim the workers holding a share of it."""
    labels = item["metadata"].get("labels") or {}
    if labels.get(naming.WORKER_ID_KEY):
        return [labels[naming.WORKER_ID_KEY]]
    if naming.SHARED_CLAIM_KEY in labels:
        return list(gpu.claim_shares(item))
    return []


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
