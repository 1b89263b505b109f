"""Project volumes on a Docker engine.

Volume names are unique per project only, so the Docker volume behind a
mount is named from the project and the volume (``naming.project_volume_name``,
as the kubernetes PVCs are): two projects' ``datasets`` are two volumes. The
backend creates a missing one with labels saying whose it is, and refuses a
volume of that name that another project's labels claim. A volume an
operator made beforehand without our labels (another driver, say) is used
as is. Size and storage class have no meaning for the local driver.
"""

from __future__ import annotations

import docker
import requests
from docker import errors as docker_errors

from . import naming
from .base import BackendError, ErrorCode, LaunchSpec

TRANSPORT_ERRORS = (requests.exceptions.RequestException, docker_errors.DockerException)


def project_volumes_ensure(client: docker.DockerClient, spec: LaunchSpec) -> None:
    """Create each mounted project volume that is missing (idempotent: the
    engine answers an existing volume of that name). CONFLICT when one
    belongs to another project; GATEWAY_UNREACHABLE (retryable) when the
    engine cannot be reached."""
    for mount in spec.mounts:
        name = naming.project_volume_name(spec.project_id, mount.volume)
        labels = {
            naming.MANAGED_BY_KEY: naming.MANAGED_BY_VALUE,
            naming.PROJECT_ID_KEY: naming.label_value(spec.project_id),
            naming.VOLUME_KEY: naming.label_value(mount.volume),
        }
        try:
            volume = client.volumes.create(name=name, labels=labels)
        except TRANSPORT_ERRORS as exc:
            raise BackendError(
                ErrorCode.GATEWAY_UNREACHABLE,
                f"Docker engine: volume {name} could not be created: {exc}",
                retryable=True,
            ) from exc
        owner = (volume.attrs.get("Labels") or {}).get(naming.PROJECT_ID_KEY)
        if owner and owner != labels[naming.PROJECT_ID_KEY]:
            raise BackendError(
                ErrorCode.CONFLICT,
                f"Docker volume {name} belongs to another project; remove it "
                "or rename the volume",
            )
