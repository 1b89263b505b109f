"""What one installation's cluster looks like: the runtime namespace, the
installation id, GPU device profiles, who may reach runtimes, and the
Pod Security choices. Plain data, built from settings by the registry and
read by the pure manifest builders."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import naming


@dataclass(frozen=True)
class GpuProfile:
    """How one GPU resource name maps to DRA: the DeviceClass a claim asks
    for, the driver that owns the devices (opaque config goes to it), the
    attribute domain CEL selectors read (``device.attributes[domain]``), and
    where GPU nodes are (tolerations, node selector). NVIDIA's DRA driver is
    one driver, ``gpu.nvidia.com``, serving both the ``gpu.nvidia.com`` and
    the ``mig.nvidia.com`` DeviceClass."""

    device_class: str
    driver: str = "gpu.nvidia.com"
    attribute_domain: str = "gpu.nvidia.com"
    tolerations: tuple[Mapping[str, Any], ...] = ()
    node_selector: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GpuProfile:
        return cls(
            device_class=data["device_class"],
            driver=data.get("driver", "gpu.nvidia.com"),
            attribute_domain=data.get("attribute_domain", "gpu.nvidia.com"),
            tolerations=tuple(data.get("tolerations", ())),
            node_selector=dict(data.get("node_selector", {})),
        )


GPU_NODE_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists"}
DEFAULT_GPU_PROFILES: dict[str, GpuProfile] = {
    "nvidia.com/gpu": GpuProfile("gpu.nvidia.com", tolerations=(GPU_NODE_TOLERATION,)),
    "nvidia.com/mig": GpuProfile("mig.nvidia.com", tolerations=(GPU_NODE_TOLERATION,)),
}
CONTROL_PLANE_POD_LABELS = {f"{naming.LABEL_PREFIX}/runtime-access": "true"}


@dataclass(frozen=True)
class Site:
    namespace: str = "notebooks"
    installation: str = naming.DEFAULT_INSTALLATION
    gpu_profiles: Mapping[str, GpuProfile] = field(
        default_factory=lambda: dict(DEFAULT_GPU_PROFILES)
    )
    # Ingress to runtimes is admitted only from these pods (the web/proxy
    # and the Celery workers that probe) in this namespace.
    control_plane_namespace: str = "notebook-fleet"
    control_plane_pod_labels: Mapping[str, str] = field(
        default_factory=lambda: dict(CONTROL_PLANE_POD_LABELS)
    )
    # True: ``hostUsers: false`` (user namespaces; needs Kubernetes 1.33+
    # and a runtime/filesystem that supports idmap mounts).
    user_namespaces: bool = False
    # Project volumes are shared by the project's workspaces at once.
    volume_access_mode: str = "ReadWriteMany"
    # Optional ReadWriteMany PVC in the runtime namespace: the dependency
    # cache of the setup step, mounted into its init container only
    # ("" = an emptyDir per pod, i.e. no cache across starts).
    dependency_cache_claim: str = ""
    # The setup init container's image ("" = the workspace's own image, whose
    # Python the workspace's venv runs on) and how it runs Python.
    setup_image: str = ""
    setup_python: str = "python3"

    def installation_labels(self) -> dict[str, str]:
        return {naming.INSTALLATION_KEY: naming.label_value(self.installation)}

    @property
    def selector(self) -> str:
        """Label selector of every object this installation manages."""
        return naming.managed_selector(self.installation)


DEFAULT_SITE = Site()
