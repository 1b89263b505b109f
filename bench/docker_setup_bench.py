"""Benchmark: launch-to-running of a workspace with a repository of 20 small
requirements on the docker backend (setup container, then the IDE's), cold
cache vs warm cache vs no change (hash hit), against a start without
setup; p50 of N each.

    NOTEBOOK_RUNTIME_DOCKER_URL=unix:///... .venv/bin/python \\
        bench/docker_setup_bench.py [--runs 5 --packages 20]

A real engine, the tests' imported image with the host's Python lent
read-only, a git repository made here (file://, bound read-only) and a
simple index of tiny wheels on 127.0.0.1:

- ``no setup``: the IDE container alone (the baseline);
- ``cold``: a new workspace volume and a new, empty cache volume;
- ``warm``: a new workspace volume, the shared cache volume of earlier runs;
- ``hash hit``: the same workspace again, requirements unchanged.

Numbers only, no assertion on speed. No database.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import docker  # noqa: E402

from tests.backends.conftest import make_spec  # noqa: E402
from tests.backends.docker_image import EXTRA_BINDS, LAUNCHER, ensure_image  # noqa: E402
from tests.setup_support import PackageIndex, Remote, make_wheel  # noqa: E402
from workers.backends.base import Phase, SetupSpec  # noqa: E402
from workers.backends.docker import DockerBackend  # noqa: E402
from workers.backends.docker_setup import setup_name  # noqa: E402


def backend_for(url: str, remote: Remote, cache_volume: str) -> DockerBackend:
    return DockerBackend(
        url,
        network="host",
        launcher=LAUNCHER,
        extra_binds=(*EXTRA_BINDS, f"{remote.bare}:{remote.bare}:ro"),
        grace_seconds=2,
        setup_python=LAUNCHER[0],
        dependency_cache_volume=cache_volume,
    )


def start(backend: DockerBackend, spec) -> tuple[float, float]:
    """Seconds from launch to RUNNING (the IDE's port answers), and the
    setup container's own run time as the engine recorded it (0 without
    one); the runtime is removed again, its workspace volume kept."""
    started = time.perf_counter()
    ref = backend.launch(spec)
    while (observation := backend.observe(ref)).phase not in (
        Phase.RUNNING,
        Phase.FAILED,
    ):
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    step = setup_seconds(backend, ref.name)
    backend.terminate(ref)
    if observation.phase != Phase.RUNNING:
        raise SystemExit(f"start failed: {observation.message}")
    return elapsed, step


def setup_seconds(backend: DockerBackend, name: str) -> float:
    try:
        state = backend._connected().containers.get(setup_name(name)).attrs["State"]
    except docker.errors.NotFound:
        return 0.0
    began, ended = (_instant(state[k]) for k in ("StartedAt", "FinishedAt"))
    return (ended - began).total_seconds()


def _instant(text: str) -> datetime:
    """Docker's RFC 3339 time with nanoseconds, cut to microseconds."""
    head, _, fraction = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(fraction + '000000')[:6]}")


def spec_for(image: str, workspace_id: str, setup: SetupSpec | None):
    spec = make_spec(
        image=image, workspace_id=workspace_id, base_url=f"/w/{workspace_id}/"
    )
    return replace(spec, setup=setup) if setup else spec


def measure(url: str, image: str, remote: Remote, index: PackageIndex, runs: int):
    setup = SetupSpec(
        repository_url=remote.url,
        kernel_name="bench",
        fetch_policy="online",
        index_url=index.url,
        allow_local_repository=True,
        timeout_seconds=300,
    )
    tag = uuid.uuid4().hex[:6]
    warm = backend_for(url, remote, f"nbf-bench-cache-{tag}-warm")
    start(warm, spec_for(image, f"wsbench{tag}prime", setup))  # fill the cache
    labels = ("no setup", "cold", "warm", "hash hit")
    times: dict[str, list[tuple[float, float]]] = {label: [] for label in labels}
    for i in range(runs):
        times["no setup"].append(
            start(warm, spec_for(image, f"wsbench{tag}n{i}", None))
        )
        cold = backend_for(url, remote, f"nbf-bench-cache-{tag}-cold{i}")
        times["cold"].append(start(cold, spec_for(image, f"wsbench{tag}c{i}", setup)))
        workspace = f"wsbench{tag}w{i}"
        times["warm"].append(start(warm, spec_for(image, workspace, setup)))
        times["hash hit"].append(start(warm, spec_for(image, workspace, setup)))
    return times, tag


def cleanup(client: docker.DockerClient, tag: str) -> None:
    for volume in client.volumes.list():
        if tag in volume.name:
            volume.remove(force=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--packages", type=int, default=20)
    args = parser.parse_args()
    url = os.environ["NOTEBOOK_RUNTIME_DOCKER_URL"]
    client = docker.DockerClient(base_url=url)
    image = ensure_image(client)
    with tempfile.TemporaryDirectory(prefix="docker-setup-bench-") as tmp:
        root = Path(tmp)
        names = [f"pkg{i:02d}" for i in range(args.packages)]
        wheels = root / "wheels"
        wheels.mkdir()
        for name in names:
            make_wheel(wheels, name)
        remote = Remote(root)
        remote.commit({"requirements.txt": "\n".join(names) + "\n"})
        for path in [remote.bare, *remote.bare.rglob("*")]:  # UID 1000 reads it
            os.chown(path, 1000, 100, follow_symlinks=False)
        with PackageIndex(wheels) as index:
            times, tag = measure(url, image, remote, index, args.runs)
        cleanup(client, tag)
    print("launch to running (setup container + IDE); the setup container alone")
    steps = {}
    for label, pairs in times.items():
        totals, steps[label] = [p[0] for p in pairs], [p[1] for p in pairs]
        print(
            f"{label:9} total p50 {statistics.median(totals):6.2f} s "
            f"(min {min(totals):5.2f}, max {max(totals):5.2f})   "
            f"setup container p50 {statistics.median(steps[label]):5.2f} s"
        )
    cold, warm = statistics.median(steps["cold"]), statistics.median(steps["warm"])
    print(f"setup container: warm is {cold / warm:.1f}x faster than cold (goal >= 5x)")
    print(
        f"setup container on a hash hit: {statistics.median(steps['hash hit']):.2f} s"
    )


if __name__ == "__main__":
    main()
