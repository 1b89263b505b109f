"""PriorityClasses from scheduling queues (cluster-scoped objects).

The API server refuses a pod whose PriorityClass is missing, so each queue's
class must exist before its first start: ``manage.py
kube_sync_priority_classes`` runs this at every deploy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kubernetes.client.exceptions import ApiException

from .kubernetes_policy import priority_class_manifest
from .kubernetes_status import TRANSPORT_ERRORS, error_from_api, unreachable

if TYPE_CHECKING:
    from .kubernetes import KubernetesBackend

# Fixed at creation: a class whose value or policy changed is made again.
IMMUTABLE = ("value", "preemptionPolicy", "globalDefault")


def priority_classes_sync(backend: KubernetesBackend, queues: list[dict]) -> list[str]:
    """Create or update the class of each queue (``name``, ``priority``,
    ``preemptible``); returns the class names. Idempotent."""
    names = []
    for queue in queues:
        body = priority_class_manifest(
            queue_name=queue["name"],
            priority=int(queue["priority"]),
            preemptible=bool(queue["preemptible"]),
            installation=backend.site.installation,
        )
        _put(backend, body)
        names.append(body["metadata"]["name"])
    return names


def _put(backend: KubernetesBackend, body: dict) -> None:
    api, name = backend.scheduling, body["metadata"]["name"]
    try:
        existing = backend._call(api.read_priority_class, name)
    except ApiException as exc:
        if exc.status != 404:
            raise error_from_api(exc) from exc
        existing = None
    except TRANSPORT_ERRORS as exc:
        raise unreachable(exc) from exc
    if existing and all(existing.get(k) == body[k] for k in IMMUTABLE):
        body["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
        backend._guarded(api.replace_priority_class, name, body)
        return
    if existing:
        backend._guarded(api.delete_priority_class, name)
    backend._guarded(api.create_priority_class, body)
