"""Checks and launch details shared by every backend.

``validate_spec`` rejects specs that can never start, with a message that
names the field and what to do. ``ide_command`` and ``runtime_environment``
are the one place that turns a spec into a command line and environment, so
the local process, the container and the pod run the same server with the
same kernel culling settings.
"""

from __future__ import annotations

import posixpath
import re

from .base import BackendError, ErrorCode, LaunchSpec
from .naming import is_dns_label

IDE_KINDS = ("jupyterlab", "code-server", "custom")
# [registry[:port]/]path[:tag][@digest]; a registry has a dot or is localhost,
# and the repository path is lowercase, as Docker requires.
_IMAGE = re.compile(
    r"^(?:(?:localhost|[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)+)(?::[0-9]+)?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+|/)[a-z0-9]+)*"
    r"(?::[\w][\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$"
)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_BASE_URL = re.compile(r"^/w/[A-Za-z0-9_-]+/$")
# Set by the backend; a spec's environment must not override them.
RESERVED_ENV_PREFIXES = ("NOTEBOOK_FLEET_", "JUPYTER_")
RESERVED_MOUNT_PATHS = ("/proc", "/sys", "/dev", "/tmp", "/etc")  # noqa: S108
FETCH_POLICIES = ("online", "mirror", "offline")
# The setup step's ref and requirements path: no option-like or shell
# characters (workspaces.validators says the same to users, with Django).
_SETUP_REF = re.compile(r"^(?!-)(?!.*\.\.)[A-Za-z0-9._/+-]{1,200}$")
_SETUP_PATH = re.compile(r"^(?![/-])(?!.*\.\.)[A-Za-z0-9._/-]{1,200}$")
WORKSPACE_PATH = "/home/jovyan"


def invalid(message: str) -> BackendError:
    return BackendError(ErrorCode.INVALID_SPEC, message, retryable=False)


def validate_spec(spec: LaunchSpec) -> None:
    """Raise ``BackendError(INVALID_SPEC)`` for a spec no backend can start."""
    if not is_dns_label(spec.worker_id.lower()) or not spec.worker_id:
        raise invalid(f"worker id {spec.worker_id!r} must be a DNS label")
    if spec.ide_kind not in IDE_KINDS:
        raise invalid(f"IDE kind {spec.ide_kind!r} is not one of {IDE_KINDS}")
    if not _IMAGE.match(spec.image) or len(spec.image) > 255:
        raise invalid(f"image {spec.image!r} is not a valid image reference")
    if not _BASE_URL.match(spec.base_url):
        raise invalid(f"base URL {spec.base_url!r} must look like /w/<workspace-id>/")
    if not spec.access_token or len(spec.access_token) < 16:
        raise invalid("the access token must have at least 16 characters")
    if spec.ide_kind == "custom" and not spec.health_path.startswith("/"):
        raise invalid("custom images need a health path starting with '/'")
    if not 1 <= spec.port <= 65535:
        raise invalid(f"port {spec.port} is outside 1-65535")
    _validate_resources(spec)
    _validate_mounts(spec)
    _validate_environment(spec)
    _validate_setup(spec)


def _validate_resources(spec: LaunchSpec) -> None:
    r = spec.resources
    for field_name, value in vars(r).items():
        if isinstance(value, int) and value < 0:
            raise invalid(f"resources.{field_name} is {value}; it must not be negative")
    if r.cpu_limit_millicores <= 0 or r.memory_limit_bytes <= 0:
        raise invalid("CPU and memory limits must be positive")
    if r.cpu_request_millicores > r.cpu_limit_millicores:
        raise invalid("the CPU request exceeds the CPU limit; lower the request")
    if r.memory_request_bytes > r.memory_limit_bytes:
        raise invalid("the memory request exceeds the memory limit; lower the request")
    if not 1 <= r.gpu_sm_percentage <= 100:
        raise invalid(f"GPU SM percentage {r.gpu_sm_percentage} is outside 1-100")
    if r.gpu_model and not re.match(r"^[A-Za-z0-9 ._-]{1,63}$", r.gpu_model):
        raise invalid(f"GPU model {r.gpu_model!r} has unsupported characters")
    if spec.kernel_cull_idle_seconds < 0 or spec.kernel_cull_interval_seconds < 0:
        raise invalid("kernel culling seconds must not be negative")


def _validate_mounts(spec: LaunchSpec) -> None:
    seen_paths: set[str] = set()
    for mount in spec.mounts:
        path = mount.path
        if not path.startswith("/") or ".." in path.split("/"):
            raise invalid(f"mount path {path!r} must be absolute and without '..'")
        normal = posixpath.normpath(path)
        if normal == "/" or any(
            normal == p or normal.startswith(p + "/") for p in RESERVED_MOUNT_PATHS
        ):
            raise invalid(f"mount path {path!r} would hide a system directory")
        if not is_dns_label(mount.volume):
            raise invalid(f"volume {mount.volume!r} must be a DNS label")
        if mount.project_id != spec.project_id:
            raise invalid(
                f"volume {mount.volume!r} belongs to another project; a "
                "workspace mounts only its own project's volumes"
            )
        if normal in seen_paths or normal == WORKSPACE_PATH:
            raise invalid(f"mount path {path!r} is used twice")
        seen_paths.add(normal)
    if spec.mounts and not spec.project_id:
        # Volume names are unique per project only: the volume a backend
        # mounts (PVC, Docker volume) is named from the project and the name.
        raise invalid(
            "volume mounts need the workspace's project (the volume is named "
            "from it); start the workspace again from its page"
        )


def _validate_environment(spec: LaunchSpec) -> None:
    for name in spec.environment:
        if not _ENV_NAME.match(name):
            raise invalid(f"environment variable name {name!r} is not valid")
        if name.startswith(RESERVED_ENV_PREFIXES):
            raise invalid(f"environment variable {name!r} is set by the platform")


def url_has_credentials(url: str) -> bool:
    """A password in the URL's user part, or any user part on https (a
    token as user name); ``git@host`` style ssh users are fine."""
    authority = url.split("://", 1)[1].split("/", 1)[0] if "://" in url else ""
    userinfo = authority.rpartition("@")[0]
    return ":" in userinfo or (url.startswith("https://") and bool(userinfo))


def _validate_setup(spec: LaunchSpec) -> None:
    """What a setup step must never be handed, whoever built the spec (the
    gateway receives it over HTTP): credentials in the URL (never echoed),
    an option-like ref or path, an unknown fetch policy."""
    setup = spec.setup
    if not setup.repository_url:
        return
    if url_has_credentials(setup.repository_url):
        raise invalid(
            "setup.repository_url carries credentials; send them sealed in "
            "setup.git_secret_sealed instead"
        )
    if setup.repository_ref and not _SETUP_REF.match(setup.repository_ref):
        raise invalid(f"setup.repository_ref {setup.repository_ref!r} is not a ref")
    if setup.requirements_path and not _SETUP_PATH.match(setup.requirements_path):
        raise invalid(
            f"setup.requirements_path {setup.requirements_path!r} must be a "
            "relative path inside the repository"
        )
    if setup.fetch_policy not in FETCH_POLICIES:
        raise invalid(
            f"setup.fetch_policy {setup.fetch_policy!r} is not one of {FETCH_POLICIES}"
        )


def runtime_environment(spec: LaunchSpec, *, port: int) -> dict[str, str]:
    """The environment a runtime gets: the user's, then the platform's
    (``JUPYTER_TOKEN`` keeps the token off the command line)."""
    return {
        **spec.environment,
        "NOTEBOOK_FLEET_WORKER_ID": spec.worker_id,
        "NOTEBOOK_FLEET_WORKSPACE_ID": spec.workspace_id,
        "NOTEBOOK_FLEET_BASE_URL": spec.base_url,
        "NOTEBOOK_FLEET_PORT": str(port),
        "NOTEBOOK_FLEET_TOKEN": spec.access_token,
        "JUPYTER_TOKEN": spec.access_token,
        "PASSWORD": spec.access_token,  # code-server's password auth
        "USER": spec.owner,
    }


def container_environment(spec: LaunchSpec, *, port: int) -> dict[str, str]:
    """``runtime_environment`` plus what a container needs. A root shell
    has no CAP_DAC_OVERRIDE, so it cannot write into files that belong to
    UID 1000: its HOME is /root, and Jupyter's runtime files go to /tmp."""
    return {
        **runtime_environment(spec, port=port),
        "HOME": "/root" if spec.root_shell else WORKSPACE_PATH,
        "JUPYTER_RUNTIME_DIR": "/tmp/jupyter-runtime",  # noqa: S108
    }


def kernel_culling_args(spec: LaunchSpec) -> list[str]:
    """Jupyter's culler flags. Connected kernels are culled too, since a
    forgotten browser tab keeps its websocket open; busy kernels never are."""
    return [
        f"--MappingKernelManager.cull_idle_timeout={spec.kernel_cull_idle_seconds}",
        f"--MappingKernelManager.cull_interval={spec.kernel_cull_interval_seconds}",
        "--MappingKernelManager.cull_connected=True",
        "--MappingKernelManager.cull_busy=False",
    ]


def ide_command(
    spec: LaunchSpec,
    *,
    launcher: tuple[str, ...],
    ip: str,
    port: int,
    root_dir: str,
    as_root: bool = False,
) -> list[str]:
    """The command line for ``spec.ide_kind``; ``launcher`` is how this host
    runs JupyterLab (``("jupyter", "lab")`` in the worker image). ``as_root``
    acknowledges UID 0 (a root shell). Custom images keep their own
    entrypoint: returns ``[]``."""
    if spec.ide_kind == "jupyterlab":
        return [
            *launcher,
            "--no-browser",
            f"--ServerApp.ip={ip}",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--ServerApp.base_url={spec.base_url}",
            f"--ServerApp.root_dir={root_dir}",
            *kernel_culling_args(spec),
            *(["--ServerApp.allow_root=True"] if as_root else []),
        ]
    if spec.ide_kind == "code-server":
        return [
            "code-server",
            f"--bind-addr={ip}:{port}",
            "--auth=password",
            "--disable-telemetry",
            root_dir,
        ]
    return []
