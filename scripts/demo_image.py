"""Import the demo's worker image into the private Docker engine, without a
registry: the tests' minimal root filesystem (tests/backends/docker_image.py)
tagged as the image alice's demo workspace names, with this venv's
``jupyter`` first on PATH (the venv, /usr and Python are lent read-only by
NOTEBOOK_RUNTIME_DOCKER_EXTRA_BINDS, printed for the caller to export).

Usage: python scripts/demo_image.py unix:///…/docker.sock
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import docker  # noqa: E402

from tests.backends.docker_image import EXTRA_BINDS, VENV, rootfs_tar  # noqa: E402

DEMO_IMAGE = "jupyter/base-notebook:2024.10"  # alice's "analysis" workspace


def main(url: str) -> None:
    client = docker.DockerClient(base_url=url)
    repository, tag = DEMO_IMAGE.rsplit(":", 1)
    path = f"PATH={VENV}/bin:/usr/local/bin:/usr/bin:/bin"
    client.api.import_image_from_data(
        rootfs_tar(), repository=repository, tag=tag, changes=[f"ENV {path}"]
    )
    print(f"export NOTEBOOK_RUNTIME_DOCKER_EXTRA_BINDS={','.join(EXTRA_BINDS)}")


if __name__ == "__main__":
    main(sys.argv[1])
