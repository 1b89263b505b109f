"""Names and labels for runtimes, made in one place.

Every backend names its runtime from the worker id through these helpers, so
a container, a pod, a claim and a process record for the same worker always
carry the same name, and ``list_managed`` can find them by one label.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import LaunchSpec

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
# Two control planes sharing a namespace tell their objects apart by this.
INSTALLATION_KEY = f"{LABEL_PREFIX}/installation"
PROJECT_ID_KEY = f"{LABEL_PREFIX}/project-id"
VOLUME_KEY = f"{LABEL_PREFIX}/volume"
SHARED_CLAIM_KEY = f"{LABEL_PREFIX}/shared-claim"
MANAGED_SELECTOR = f"{MANAGED_BY_KEY}={MANAGED_BY_VALUE}"
DEFAULT_INSTALLATION = "default"

NAME_PREFIX = "nbf"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)


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


def is_dns_subdomain(text: str) -> bool:
    return len(text) <= 253 and bool(_DNS_SUBDOMAIN.match(text))


def claim_name(worker_id: str) -> str:
    """The DRA ResourceClaim holding a worker's GPUs."""
    return dns_label(worker_id, prefix=f"{NAME_PREFIX}-gpu")


def shared_claim_name(group: str, index: int) -> str:
    """The ``index``-th shared ResourceClaim (one physical GPU set) of a
    sharing group (device profile + model + count)."""
    return dns_label(f"{group}-{index}", prefix=f"{NAME_PREFIX}-shared")


def project_volume_name(project_id: str, volume: str) -> str:
    """The PVC of project ``project_id``'s volume ``volume``: volume names are
    unique per project only, so the project is part of the name."""
    return dns_label(f"{project_id}-{volume}", prefix=f"{NAME_PREFIX}-pv")


def workspace_volume_name(workspace_id: str) -> str:
    """The volume / PVC holding a workspace's home; it outlives its workers."""
    return dns_label(workspace_id, prefix=f"{NAME_PREFIX}-ws")


def priority_class_name(queue_name: str) -> str:
    """PriorityClass an operator creates per scheduling queue (value = the
    queue's priority)."""
    return dns_label(queue_name, prefix="notebook-fleet")


def label_value(value: str | int | bool) -> str:
    """``value`` as a valid label value (at most 63 chars of alphanumerics
    and ``-_.``, alphanumeric at both ends): every label value the platform
    writes goes through here. Booleans are "true"/"false"; a negative number
    is "minus-10" (a bare "-10" is rejected by the API server with 422).
    Unsupported characters become ``-`` (readable: "RTX 5090" → "RTX-5090");
    text that lost characters at its ends or was too long keeps a hash
    suffix, so "-x" and "x" never collapse to one value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value) if value >= 0 else f"minus-{-value}"
    text = value
    if len(text) <= 63 and _LABEL_VALUE.match(text):
        return text
    replaced = re.sub(r"[^A-Za-z0-9_.-]+", "-", text)
    cleaned = replaced.strip("-_.")
    if cleaned and cleaned == replaced and len(cleaned) <= 63:
        return cleaned
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    head = cleaned[:54].rstrip("-_.")
    return f"{head}-{digest}" if head else f"x-{digest}"


def label_key(text: str) -> str:
    """``text`` as a valid label key: ``[prefix/]name``, the prefix a DNS
    subdomain (dropped when it cannot be one), the name a label value."""
    prefix, _, name = text.rpartition("/")
    name = label_value(name) or "x"
    if prefix and not is_dns_subdomain(prefix):
        prefix = re.sub(r"[^a-z0-9.-]+", "-", prefix.lower()).strip("-.")[:253]
    return f"{prefix}/{name}" if prefix and is_dns_subdomain(prefix) else name


def managed_selector(installation: str = DEFAULT_INSTALLATION) -> str:
    """Label selector of everything one installation manages."""
    return f"{MANAGED_SELECTOR},{INSTALLATION_KEY}={label_value(installation)}"


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


def runtime_labels(spec: LaunchSpec) -> dict[str, str]:
    """Every label a worker's runtime carries: the spec's own labels first
    (platform keys dropped, so they can never override a platform label),
    then platform, queue and, for GPU workers, the DRA labels quota
    accounting reads."""
    labels = {
        label_key(k): label_value(v)
        for k, v in spec.labels.items()
        if not label_key(k).startswith(LABEL_PREFIX)
    }
    labels |= platform_labels(
        worker_id=spec.worker_id,
        workspace_id=spec.workspace_id,
        owner=spec.owner,
        ide_kind=spec.ide_kind,
    )
    labels |= {
        QUEUE_KEY: label_value(spec.queue_name),
        QUEUE_PRIORITY_KEY: label_value(spec.queue_priority),
        PREEMPTIBLE_KEY: label_value(spec.preemptible),
    }
    return labels | gpu_labels(spec)


def gpu_labels(spec: LaunchSpec) -> dict[str, str]:
    r = spec.resources
    if not r.gpu_count:
        return {}
    return {
        DRA_KEY: label_value(True),
        GPU_COUNT_KEY: label_value(r.gpu_count),
        GPU_MODEL_KEY: label_value(r.gpu_model or "any"),
        GPU_SM_KEY: label_value(r.gpu_sm_percentage),
    }
