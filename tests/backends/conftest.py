"""Harnesses: one per backend, each a real runtime path.

- local: real JupyterLab processes.
- docker: real Docker engine (NOTEBOOK_RUNTIME_DOCKER_URL, scripts/start-dockerd.sh),
  a ``docker import``-ed minimal image, host Python lent read-only.
- kubernetes: the real ``kubernetes`` client against ``FakeKubeAPI`` over HTTP;
  the "pod" is a Jupyter-like HTTP stub on loopback (no container runs).
- external: the reference gateway as a real subprocess over HTTP, running
  real JupyterLab processes through the local backend.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx
import pytest

from tests.backends.fake_kube import FakeKubeAPI
from tests.backends.jupyter_stub import jupyter_stub
from tests.conftest import docker_url, missing_service
from workers.backends.base import LaunchSpec, Resources, RuntimeBackend, RuntimeRef
from workers.backends.local import LocalBackend

TOKEN = "t0ken-" + "a" * 26
GIB = 1024**3
REPO = Path(__file__).resolve().parents[2]


def make_spec(**overrides) -> LaunchSpec:
    worker_id = overrides.pop("worker_id", f"t{uuid.uuid4().hex[:12]}")
    workspace_id = overrides.pop("workspace_id", f"ws{uuid.uuid4().hex[:8]}")
    spec = LaunchSpec(
        worker_id=worker_id,
        workspace_id=workspace_id,
        owner="alice",
        owner_id="1",
        image=os.environ.get(
            "NOTEBOOK_FLEET_TEST_IMAGE", "notebook-fleet/worker:latest"
        ),
        ide_kind="jupyterlab",
        base_url=f"/w/{workspace_id}/",
        access_token=TOKEN,
        resources=Resources(
            cpu_request_millicores=250,
            cpu_limit_millicores=1000,
            memory_request_bytes=GIB // 2,
            memory_limit_bytes=4 * GIB,
        ),
        labels={"team": "ml"},
        kernel_cull_idle_seconds=600,
        kernel_cull_interval_seconds=60,
    )
    return replace(spec, **overrides)


@dataclass
class Harness:
    name: str
    backend: RuntimeBackend
    rebuild: Callable[[], RuntimeBackend]
    outage: Callable[[], contextlib.AbstractContextManager[RuntimeBackend]]
    spec_overrides: dict = field(default_factory=dict)
    drive_running: Callable[[LaunchSpec, RuntimeRef], None] = lambda spec, ref: None
    # SIGKILL the runtime behind the backend's back (None: cannot here).
    kill: Callable[[RuntimeRef], None] | None = None

    def spec(self, **overrides) -> LaunchSpec:
        return make_spec(**{**self.spec_overrides, **overrides})


def wait_until(predicate: Callable[[], object], what: str, timeout: float = 60.0):
    """Poll ``predicate`` until it returns something truthy and return that
    (a functional wait, not a speed assertion); fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def wait_for_phase(
    backend: RuntimeBackend, ref: RuntimeRef, phases: set[str], timeout: float = 60.0
):
    """Poll observe until its phase is in ``phases``; the last observation
    either way (a functional wait, not a speed assertion)."""
    deadline = time.monotonic() + timeout
    observation = backend.observe(ref)
    while observation.phase not in phases and time.monotonic() < deadline:
        time.sleep(0.2)
        observation = backend.observe(ref)
    return observation


# --- local -------------------------------------------------------------------


@contextlib.contextmanager
def _state_unreadable(backend: LocalBackend, tmp: Path) -> Iterator[LocalBackend]:
    blocker = tmp / "not-a-directory"
    blocker.write_text("")
    original = backend.state_dir
    backend.state_dir = blocker
    try:
        yield backend
    finally:
        backend.state_dir = original


def kill_pid(ref: RuntimeRef) -> None:
    """SIGKILL a local runtime's process (its pid is in the ref)."""
    os.kill(ref.extra["pid"], signal.SIGKILL)


@pytest.fixture(scope="module")
def local_harness(tmp_path_factory) -> Iterator[Harness]:
    root = tmp_path_factory.mktemp("local")

    def build() -> LocalBackend:
        return LocalBackend(root / "workspaces", grace_seconds=3)

    backend = build()
    yield Harness(
        "local",
        backend,
        build,
        lambda: _state_unreadable(backend, root),
        kill=kill_pid,
    )
    for ref in backend.list_managed():
        backend.terminate(ref)


# --- docker ------------------------------------------------------------------


@pytest.fixture(scope="module")
def docker_harness() -> Iterator[Harness]:
    url = docker_url()
    if not url:
        missing_service(
            "needs a Docker engine: set NOTEBOOK_RUNTIME_DOCKER_URL "
            '(eval "$(scripts/start-dockerd.sh)")'
        )
    import docker

    from tests.backends.docker_image import EXTRA_BINDS, LAUNCHER, ensure_image
    from workers.backends.docker import DockerBackend

    image = ensure_image(docker.DockerClient(base_url=url))

    def build() -> DockerBackend:
        return DockerBackend(
            url,
            network="host",
            launcher=LAUNCHER,
            extra_binds=EXTRA_BINDS,
            grace_seconds=3,
        )

    @contextlib.contextmanager
    def closed_socket() -> Iterator[DockerBackend]:
        yield DockerBackend(
            "unix:///nonexistent/notebook-fleet/docker.sock", network="host", timeout=2
        )

    def kill(ref: RuntimeRef) -> None:
        docker.DockerClient(base_url=url).containers.get(ref.name).kill("SIGKILL")

    backend = build()
    yield Harness(
        "docker",
        backend,
        build,
        closed_socket,
        spec_overrides={"image": image},
        kill=kill,
    )
    for ref in backend.list_managed():
        backend.terminate(ref)
    client = docker.DockerClient(base_url=url)
    for volume in client.volumes.list():  # workspace volumes outlive containers
        if volume.name.startswith(("nbf-ws-ws", "nbf-test-")):
            volume.remove()


# --- kubernetes ----------------------------------------------------------------


@pytest.fixture(scope="module")
def fake_kube() -> Iterator[FakeKubeAPI]:
    api = FakeKubeAPI().start()
    yield api
    api.stop()


@pytest.fixture(name="api")
def fresh_fake_kube() -> Iterator[FakeKubeAPI]:
    """A fake API server of the test's own (``fake_kube`` is shared)."""
    api = FakeKubeAPI().start()
    yield api
    api.stop()


def kube_backend(api: FakeKubeAPI, **options):
    from kubernetes import client as k8s

    from workers.backends.kubernetes import KubernetesBackend

    options.setdefault("endpoint_mode", "pod-ip")
    options.setdefault("request_timeout", 1.0)
    backend = KubernetesBackend(k8s.Configuration(host=api.url), **options)
    # What the deploy runs (manage.py kube_sync_priority_classes): the fake,
    # like a real API server, refuses pods whose PriorityClass is missing.
    if not api.names("priorityclasses"):
        backend.priority_classes_sync(
            [{"name": "default", "priority": 0, "preemptible": False}]
        )
    return backend


@pytest.fixture(scope="module")
def kubernetes_harness(fake_kube) -> Iterator[Harness]:
    workspace_id = f"ws{uuid.uuid4().hex[:8]}"
    stub = jupyter_stub(f"/w/{workspace_id}/", TOKEN)

    def drive_running(spec: LaunchSpec, ref: RuntimeRef) -> None:
        """What kubelet would do: schedule, pull, start; the pod's IP is the
        loopback stub."""
        fake_kube.add_event(ref.name, "Scheduled", f"assigned {ref.name} to node-1")
        fake_kube.add_event(ref.name, "Started", "started container runtime")
        fake_kube.set_pod_status(
            ref.name,
            phase="Running",
            podIP="127.0.0.1",
            containerStatuses=[{"name": "runtime", "ready": True}],
        )

    @contextlib.contextmanager
    def slow_api() -> Iterator[RuntimeBackend]:
        fake_kube.delay = 1.5  # longer than the client's 1 s timeout
        try:
            yield backend
        finally:
            fake_kube.delay = 0

    def kill(ref: RuntimeRef) -> None:
        """What kubelet reports for a SIGKILLed container of a
        ``restartPolicy: Never`` pod."""
        killed = {"exitCode": 137, "reason": "Error", "signal": 9}
        fake_kube.set_pod_status(
            ref.name,
            phase="Failed",
            podIP="127.0.0.1",
            containerStatuses=[
                {"name": "runtime", "ready": False, "state": {"terminated": killed}}
            ],
        )

    backend = kube_backend(fake_kube)
    yield Harness(
        "kubernetes",
        backend,
        lambda: kube_backend(fake_kube),
        slow_api,
        kill=kill,
        spec_overrides={
            "workspace_id": workspace_id,
            "port": stub.port,
            "base_url": f"/w/{workspace_id}/",
        },
        drive_running=drive_running,
    )
    stub.stop()


# --- external ------------------------------------------------------------------


def _free_port() -> int:
    from workers.backends.local_process import free_port

    return free_port("127.0.0.1")


def start_gateway(root: Path, token: str) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "workers.backends.external",
            "--port",
            str(port),
            "--workspaces-dir",
            str(root / "workspaces"),
            "--state-dir",
            str(root / "state"),
        ],
        cwd=REPO,
        env={**os.environ, "NOTEBOOK_RUNTIME_GATEWAY_TOKEN": token},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/v1/runtimes", timeout=1)
            return process, url
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the reference gateway did not start")


@pytest.fixture(scope="module")
def external_harness(tmp_path_factory) -> Iterator[Harness]:
    from workers.backends.external import ExternalBackend

    root = tmp_path_factory.mktemp("gateway")
    process, url = start_gateway(root, TOKEN)

    def build(timeout: float = 10.0) -> ExternalBackend:
        # The product's default: a DELETE waits for the runtime to exit
        # (up to the 3 s grace), longer than 1 s on a loaded machine.
        return ExternalBackend(url, TOKEN, timeout=timeout)

    @contextlib.contextmanager
    def hung_gateway() -> Iterator[ExternalBackend]:
        process.send_signal(signal.SIGSTOP)  # accepts at kernel level, never answers
        try:
            yield build(timeout=1.0)
        finally:
            process.send_signal(signal.SIGCONT)

    # The gateway runs the runtime as a local process; its ref carries the pid.
    yield Harness("external", build(), build, hung_gateway, kill=kill_pid)
    cleanup = LocalBackend(
        root / "workspaces", state_dir=root / "state", grace_seconds=3
    )
    for ref in cleanup.list_managed():
        cleanup.terminate(ref)
    process.terminate()
    process.wait(10)


# --- a real cluster (opt-in) ---------------------------------------------------


@pytest.fixture(scope="module")
def kubernetes_real_harness() -> Iterator[Harness]:
    """The same contract against a real cluster: needs KUBECONFIG, a
    namespace (NOTEBOOK_FLEET_TEST_NAMESPACE, default "notebooks"), an image
    serving JupyterLab (NOTEBOOK_FLEET_TEST_IMAGE) and pod IPs reachable from
    the test runner."""
    if not os.environ.get("KUBECONFIG"):
        pytest.skip("real_cluster is opt-in: set KUBECONFIG to run it")
    from kubernetes import client as k8s

    from workers.backends.kubernetes import KubernetesBackend

    namespace = os.environ.get("NOTEBOOK_FLEET_TEST_NAMESPACE", "notebooks")

    def build() -> KubernetesBackend:
        return KubernetesBackend.from_config(
            os.environ["KUBECONFIG"], namespace=namespace, endpoint_mode="pod-ip"
        )

    @contextlib.contextmanager
    def closed_port() -> Iterator[KubernetesBackend]:
        config = k8s.Configuration(host=f"http://127.0.0.1:{_free_port()}")
        yield KubernetesBackend(config, namespace=namespace, request_timeout=1.0)

    backend = build()
    yield Harness("kubernetes-real", backend, build, closed_port)
    for ref in backend.list_managed():
        backend.terminate(ref)


BACKENDS = [
    pytest.param("local", id="local"),
    pytest.param("docker", id="docker", marks=pytest.mark.needs_docker),
    pytest.param("kubernetes", id="kubernetes"),
    pytest.param("external", id="external"),
    pytest.param(
        "kubernetes_real", id="kubernetes-real", marks=pytest.mark.real_cluster
    ),
]


@pytest.fixture(params=BACKENDS)
def harness(request) -> Harness:
    return request.getfixturevalue(f"{request.param}_harness")
