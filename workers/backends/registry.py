"""``get_backend(name)``: backends built from Django settings, cached.

The only Django-aware module of the package. Settings are read when a
backend is first built, not at import. Tests replace an instance with
``override(name, backend)``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from django.conf import settings

from .base import BackendError, ErrorCode, RuntimeBackend

_instances: dict[str, RuntimeBackend] = {}
DEFAULT_DOCKER_SOCKET = Path("/var/run/docker.sock")
_lock = threading.Lock()


def _local() -> RuntimeBackend:
    from workers.secret_box import unseal

    from .local import LocalBackend

    return LocalBackend(
        settings.NOTEBOOK_RUNTIME_WORKSPACES_DIR,
        dependency_cache_dir=settings.NOTEBOOK_RUNTIME_DEPENDENCY_CACHE_DIR,
        unseal=unseal,
    )


def _docker() -> RuntimeBackend:
    from workers.secret_box import unseal

    from .docker import DockerBackend

    url = settings.NOTEBOOK_RUNTIME_DOCKER_URL or f"unix://{DEFAULT_DOCKER_SOCKET}"
    return DockerBackend(
        url,
        network=settings.NOTEBOOK_RUNTIME_DOCKER_NETWORK,
        extra_binds=settings.NOTEBOOK_RUNTIME_DOCKER_EXTRA_BINDS,
        setup_image=settings.NOTEBOOK_RUNTIME_DOCKER_SETUP_IMAGE,
        dependency_cache_volume=settings.NOTEBOOK_RUNTIME_DOCKER_DEPENDENCY_CACHE_VOLUME,
        unseal=unseal,
    )


def kubernetes_site():
    """The cluster layout of this installation, from settings."""
    from .kubernetes_site import DEFAULT_GPU_PROFILES, GpuProfile, Site

    profiles = {
        name: GpuProfile.from_json(data)
        for name, data in settings.NOTEBOOK_RUNTIME_KUBE_GPU_PROFILES.items()
    }
    return Site(
        namespace=settings.NOTEBOOK_RUNTIME_KUBE_NAMESPACE,
        installation=settings.NOTEBOOK_FLEET_INSTALLATION_ID,
        gpu_profiles=profiles or dict(DEFAULT_GPU_PROFILES),
        control_plane_namespace=settings.NOTEBOOK_RUNTIME_KUBE_CONTROL_PLANE_NAMESPACE,
        user_namespaces=settings.NOTEBOOK_RUNTIME_KUBE_USER_NAMESPACES,
        volume_access_mode=settings.NOTEBOOK_RUNTIME_KUBE_VOLUME_ACCESS_MODE,
        dependency_cache_claim=settings.NOTEBOOK_RUNTIME_KUBE_DEPENDENCY_CACHE_PVC,
        setup_image=settings.NOTEBOOK_RUNTIME_KUBE_SETUP_IMAGE,
    )


def _kubernetes() -> RuntimeBackend:
    from workers.secret_box import unseal

    from .kubernetes import KubernetesBackend

    return KubernetesBackend.from_config(
        site=kubernetes_site(),
        endpoint_mode=settings.NOTEBOOK_RUNTIME_KUBE_ENDPOINT_MODE,
        watch=settings.NOTEBOOK_RUNTIME_KUBE_WATCH,
        unseal=unseal,
    )


def _external() -> RuntimeBackend:
    from workers.secret_box import unseal

    from .external import ExternalBackend

    if not settings.NOTEBOOK_RUNTIME_GATEWAY_URL:
        raise BackendError(
            ErrorCode.INTERNAL,
            "the external backend needs "
            "NOTEBOOK_RUNTIME_GATEWAY_URL and _TOKEN in settings",
        )
    return ExternalBackend(
        settings.NOTEBOOK_RUNTIME_GATEWAY_URL,
        settings.NOTEBOOK_RUNTIME_GATEWAY_TOKEN,
        unseal=unseal,
    )


FACTORIES: dict[str, Callable[[], RuntimeBackend]] = {
    "local": _local,
    "docker": _docker,
    "kubernetes": _kubernetes,
    "external": _external,
}


def get_backend(name: str = "") -> RuntimeBackend:
    """The backend called ``name`` (default: settings'), built once per
    process. Raises ``BackendError(INTERNAL)`` for an unknown name."""
    name = name or settings.NOTEBOOK_RUNTIME_DEFAULT_BACKEND
    with _lock:
        if name not in _instances:
            if name not in FACTORIES:
                raise BackendError(
                    ErrorCode.INTERNAL,
                    f"no runtime backend {name!r}; "
                    f"known: {', '.join(sorted(FACTORIES))}",
                )
            _instances[name] = FACTORIES[name]()
        return _instances[name]


def unavailable_reason(name: str) -> str:
    """Why backend ``name`` cannot be used in this process ("" when it can),
    judged from configuration: building a backend reads its settings and
    config files but calls no engine, cluster or gateway."""
    with _lock:
        if name in _instances:
            return ""
    if (
        name == "docker"
        and not settings.NOTEBOOK_RUNTIME_DOCKER_URL
        and not DEFAULT_DOCKER_SOCKET.exists()
    ):
        return (
            "no Docker engine is configured (NOTEBOOK_RUNTIME_DOCKER_URL is unset "
            f"and {DEFAULT_DOCKER_SOCKET} does not exist)"
        )
    try:
        get_backend(name)
    except BackendError as exc:
        return exc.message
    return ""


@contextlib.contextmanager
def override(name: str, backend: RuntimeBackend) -> Iterator[RuntimeBackend]:
    """Serve ``backend`` for ``name`` inside the block, then restore."""
    with _lock:
        previous = _instances.get(name)
        _instances[name] = backend
    try:
        yield backend
    finally:
        with _lock:
            if previous is None:
                _instances.pop(name, None)
            else:
                _instances[name] = previous


def reset() -> None:
    """Forget built backends (settings changed, tests)."""
    with _lock:
        _instances.clear()
