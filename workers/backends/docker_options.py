"""Pure: a LaunchSpec → keyword arguments for ``containers.create``.

Kept apart from the API calls so the security settings are visible in one
place and unit-testable without an engine."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from docker.types import DeviceRequest, Mount

from . import naming
from .base import LaunchSpec
from .spec import WORKSPACE_PATH, container_environment, ide_command

PORT_LABEL = f"{naming.LABEL_PREFIX}/port"
WORKER_USER = "1000:100"
WORKER_GROUP = "100"
DEFAULT_TMP_BYTES = 256 * 1024 * 1024


def _mounts(spec: LaunchSpec, extra_binds: Sequence[str]) -> list[Mount]:
    """Named volumes only, from the spec (a project volume's Docker name
    comes from the spec's project and the volume: never another project's);
    binds only from operator config (``host:container[:ro]``)."""
    mounts = [
        Mount(
            WORKSPACE_PATH,
            naming.workspace_volume_name(spec.workspace_id),
            type="volume",
        )
    ]
    mounts += [
        Mount(
            m.path,
            naming.project_volume_name(spec.project_id, m.volume),
            type="volume",
            read_only=m.read_only,
        )
        for m in spec.mounts
    ]
    for bind in extra_binds:
        source, target, *mode = bind.split(":")
        mounts.append(Mount(target, source, type="bind", read_only=mode == ["ro"]))
    return mounts


def _limits(spec: LaunchSpec) -> dict[str, Any]:
    r = spec.resources
    limits: dict[str, Any] = {
        "nano_cpus": r.cpu_limit_millicores * 1_000_000,
        "cpu_shares": max(2, r.cpu_request_millicores * 1024 // 1000),
        "mem_limit": r.memory_limit_bytes,
        "memswap_limit": r.memory_limit_bytes,  # no swap beyond the limit
        "mem_reservation": r.memory_request_bytes,
        "pids_limit": 4096,
    }
    if r.gpu_count:
        limits["device_requests"] = [
            DeviceRequest(count=r.gpu_count, capabilities=[["gpu"]])
        ]
    return limits


def container_options(
    spec: LaunchSpec,
    *,
    port: int,
    network: str,
    launcher: tuple[str, ...],
    extra_binds: Sequence[str] = (),
) -> dict[str, Any]:
    """Everything ``containers.create`` needs. Never privileged, all
    capabilities dropped, none added, no new privileges, no host namespaces
    except the operator's ``network="host"``."""
    ip = "127.0.0.1" if network == "host" else "0.0.0.0"  # noqa: S104
    command = ide_command(
        spec,
        launcher=launcher,
        ip=ip,
        port=port,
        root_dir=WORKSPACE_PATH,
        as_root=spec.root_shell,
    )
    tmp_bytes = spec.resources.temp_storage_bytes or DEFAULT_TMP_BYTES
    options: dict[str, Any] = {
        "name": naming.runtime_name(spec.worker_id),
        "image": spec.image,
        "command": command or None,
        "environment": container_environment(spec, port=port),
        "labels": {**naming.runtime_labels(spec), PORT_LABEL: str(port)},
        "user": "0:0" if spec.root_shell else WORKER_USER,
        "group_add": [WORKER_GROUP],  # a root shell may write group-writable files
        "working_dir": WORKSPACE_PATH,
        "mounts": _mounts(spec, extra_binds),
        "tmpfs": {"/tmp": f"size={tmp_bytes},mode=1777"},  # noqa: S108
        "privileged": False,
        "cap_drop": ["ALL"],
        "cap_add": [],
        "security_opt": ["no-new-privileges:true"],
        "restart_policy": {"Name": "no"},
        **_limits(spec),
    }
    if network == "host":
        options["network_mode"] = "host"
    elif network:
        options["network"] = network
    return options
