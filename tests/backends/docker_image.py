"""The docker tests' runtime image, made without a registry: ``docker
import`` of a tiny root filesystem (passwd, group, an empty home owned by UID
1000, /usr-merged symlinks). The host's /usr, Python and venv are lent
read-only through the backend's operator-only ``extra_binds``."""

from __future__ import annotations

import io
import sys
import tarfile
import time
from pathlib import Path

import docker

IMAGE = "notebook-fleet-test/rootfs:2"
VENV = Path(sys.prefix)
PYTHON_HOME = Path(sys.base_prefix)
LAUNCHER = (str(VENV / "bin" / "python"), "-m", "jupyterlab")
EXTRA_BINDS = ("/usr:/usr:ro", f"{PYTHON_HOME}:{PYTHON_HOME}:ro", f"{VENV}:{VENV}:ro")
FILES = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/sh\n"
    "jovyan:x:1000:100::/home/jovyan:/bin/sh\n",
    "etc/group": "root:x:0:\nusers:x:100:\n",
}
DIRS = {
    "home": (0, 0),
    "home/jovyan": (1000, 100),
    "tmp": (0, 0),
    "root": (0, 0),
    "proc": (0, 0),
    "dev": (0, 0),
    "sys": (0, 0),
    "usr": (0, 0),
    "etc": (0, 0),
}


def rootfs_tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, (uid, gid) in DIRS.items():
            info = tarfile.TarInfo(path)
            mode = 0o1777 if path == "tmp" else 0o755  # as in any real image
            info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, mode, uid, gid
            info.mtime = int(time.time())
            tar.addfile(info)
        for link in ("bin", "lib", "lib64", "sbin"):
            info = tarfile.TarInfo(link)
            info.type, info.linkname = tarfile.SYMTYPE, f"usr/{link}"
            tar.addfile(info)
        for path, text in FILES.items():
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def ensure_image(client: docker.DockerClient) -> str:
    """Import the image once per engine (idempotent)."""
    try:
        client.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        repository, tag = IMAGE.rsplit(":", 1)
        client.api.import_image_from_data(rootfs_tar(), repository=repository, tag=tag)
    return IMAGE
