"""Names and labels for runtimes, made in one place.

Every backend names its runtime from the worker id through these helpers, so
a container, a pod, a claim and a process record for the same worker always
carry the same name, and ``list_managed`` can find them by one label.
"""

from __future__ import annotations

import hashlib
import re

LABEL_PREFIX = "notebook-fleet.io"
MANAGED_BY_KEY = f"{LABEL_PREFIX}/managed-by"
MANAGED_BY_VALUE = "notebook-fleet"
WORKER_ID_KEY = f"{LABEL_PREFIX}/worker-id"
WORKSPACE_ID_KEY = f"{LABEL_PREFIX}/workspace-id"
OWNER_KEY = f"{LABEL_PREFIX}/owner"
IDE_KIND_KEY = f"{LABEL_PREFIX}/ide-kind"
QUEUE_KEY = f"{LABEL_PREFIX}/queue"
QUEUE_PRIORITY_KEY = f"{LABEL_PREFIX}/queue-priority"
PREEMPTIBLE_KEY = f"{LABEL_PREFIX}/preemptible"
DRA_KEY = f"{LABEL_PREFIX}/dra"
GPU_COUNT_KEY = f"{LABEL_PREFIX}/gpu-count"
GPU_MODEL_KEY = f"{LABEL_PREFIX}/gpu-model"
GPU_SM_KEY = f"{LABEL_PREFIX}/gpu-sm-percentage"
MANAGED_SELECTOR = f"{MANAGED_BY_KEY}={MANAGED_BY_VALUE}"

NAME_PREFIX = "nbf"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def dns_label(text: str, *, prefix: str = NAME_PREFIX, max_length: int = 63) -> str:
    """A DNS-1123 label made from ``text``: lowercase, ``[a-z0-9-]``, at most
    ``max_length`` characters. Text that had to be changed or cut gets a short
    hash suffix, so two different inputs never collapse to one name."""
    cleaned = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    name = f"{prefix}-{cleaned}" if prefix else cleaned
    if name == (f"{prefix}-{text}" if prefix else text) and len(name) <= max_length:
        return name
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    head = name[: max_length - len(digest) - 1].rstrip("-")
    return f"{head}-{digest}"


def is_dns_label(text: str) -> bool:
    return len(text) <= 63 and bool(_DNS_LABEL.match(text))


def runtime_name(worker_id: str) -> str:
    """Container / pod / service / process name of a worker's runtime."""
    return dns_label(worker_id)


def claim_name(worker_id: str) -> str:
    """The DRA ResourceClaim holding a worker's GPUs."""
    return dns_label(worker_id, prefix=f"{NAME_PREFIX}-gpu")


def workspace_volume_name(workspace_id: str) -> str:
    """The volume / PVC holding a workspace's home; it outlives its workers."""
    return dns_label(workspace_id, prefix=f"{NAME_PREFIX}-ws")


def priority_class_name(queue_name: str) -> str:
    """PriorityClass an operator creates per scheduling queue (value = the
    queue's priority)."""
    return dns_label(queue_name, prefix="notebook-fleet")


def label_value(text: str) -> str:
    """``text`` as a valid label value (63 chars, alphanumerics, ``-_.``)."""
    if _LABEL_VALUE.match(text) and len(text) <= 63:
        return text
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-_.")
    return dns_label(cleaned, prefix="") if cleaned else "x"


def platform_labels(
    *, worker_id: str, workspace_id: str, owner: str, ide_kind: str
) -> dict[str, str]:
    """Labels every managed runtime carries; ``WORKER_ID_KEY`` proves a
    runtime is ours when a create call meets an existing name."""
    return {
        MANAGED_BY_KEY: MANAGED_BY_VALUE,
        WORKER_ID_KEY: label_value(worker_id),
        WORKSPACE_ID_KEY: label_value(workspace_id),
        OWNER_KEY: label_value(owner),
        IDE_KIND_KEY: label_value(ide_kind),
    }
