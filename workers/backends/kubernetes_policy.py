"""Isolation and scheduling policy objects: a NetworkPolicy per runtime
and PriorityClasses per scheduling queue. Pure functions over plain dicts."""

from __future__ import annotations

from typing import Any

from . import naming
from .base import LaunchSpec
from .kubernetes_site import Site

Manifest = dict[str, Any]
# PriorityClass values above this are reserved for system classes.
MAX_USER_PRIORITY = 1_000_000_000


def network_policy_manifest(spec: LaunchSpec, labels: dict, site: Site) -> Manifest:
    """Admit ingress to the worker's pod only from the control plane's pods
    (the ``/w/`` proxy and the probing Celery workers), on the runtime port.
    Jupyter listens on every interface of its pod, so without this any pod
    in the cluster could reach it past the proxy. Egress is governed by the
    namespace's default-deny policy (deploy/kubernetes), not here."""
    control_plane = {
        "namespaceSelector": {
            "matchLabels": {"kubernetes.io/metadata.name": site.control_plane_namespace}
        },
        "podSelector": {"matchLabels": dict(site.control_plane_pod_labels)},
    }
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": naming.runtime_name(spec.worker_id),
            "namespace": site.namespace,
            "labels": labels,
        },
        "spec": {
            "podSelector": {
                "matchLabels": {
                    naming.WORKER_ID_KEY: naming.label_value(spec.worker_id)
                }
            },
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [control_plane],
                    "ports": [{"protocol": "TCP", "port": spec.port}],
                }
            ],
        },
    }


def preemption_policy(*, preemptible: bool) -> str:
    """A preemptible (best-effort) queue never preempts others: its pods
    wait for capacity instead of evicting lower-priority pods."""
    return "Never" if preemptible else "PreemptLowerPriority"


def priority_class_manifest(
    *, queue_name: str, priority: int, preemptible: bool, installation: str
) -> Manifest:
    """The cluster-scoped PriorityClass ``notebook-fleet-<queue>``; its value
    is the queue's priority, clamped to the user range."""
    value = max(-MAX_USER_PRIORITY, min(priority, MAX_USER_PRIORITY))
    return {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {
            "name": naming.priority_class_name(queue_name),
            "labels": {
                naming.MANAGED_BY_KEY: naming.MANAGED_BY_VALUE,
                naming.INSTALLATION_KEY: naming.label_value(installation),
                naming.QUEUE_KEY: naming.label_value(queue_name),
            },
        },
        "value": value,
        "globalDefault": False,
        "preemptionPolicy": preemption_policy(preemptible=preemptible),
        "description": f"Notebook Fleet scheduling queue {queue_name}",
    }
