"""`make demo-notebook-runtime-up` serves the product on the docker
backend of the private engine; alice signs in, starts her "analysis"
workspace, opens it through the product's /w/<id>/ proxy and the Jupyter
Server in the container answers; she stops it; `-down` stops the server and
removes the container."""

import json
import os
import re
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from workspaces.demo import demo_id

pytestmark = [pytest.mark.needs_docker]
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make(target: str, port: int, demo_dir: Path) -> subprocess.CompletedProcess:
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")
    }
    return subprocess.run(
        ["make", "-o", "install", target, f"PORT={port}", f"DEMO_DIR={demo_dir}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def signed_in(base: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=10, follow_redirects=True)
    page = client.get("/login/").text
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    client.post(
        "/login/",
        data={"username": "alice", "password": password, "csrfmiddlewaretoken": csrf},
    )
    client.headers["X-CSRFToken"] = client.cookies["csrftoken"]
    return client


def state(client: httpx.Client, workspace_id) -> str:
    html = client.get(f"/workspaces/{workspace_id}/").text
    return re.search(r"\b(Running|Starting|Stopping|Stopped|Error)\b", html).group(1)


def wait_for(client, workspace_id, wanted: str, seconds: float = 90) -> str:
    deadline = time.monotonic() + seconds
    while (found := state(client, workspace_id)) != wanted:
        assert time.monotonic() < deadline, f"still {found}, wanted {wanted}"
        time.sleep(1)
    return found


def analysis_containers() -> list[str]:
    import docker

    engine = docker.DockerClient(base_url=os.environ["NOTEBOOK_RUNTIME_DOCKER_URL"])
    names = [c.name for c in engine.containers.list(all=True)]
    return [n for n in names if "analysis" in n]


def opened(client: httpx.Client, workspace_id) -> httpx.Response:
    """The runtime's own API through the product's proxy, as the signed-in
    browser would reach it (the proxy adds the runtime's token)."""
    return client.get(f"/w/{workspace_id}/api/status", follow_redirects=False)


def test_demo_up_lets_alice_open_her_container_and_down_cleans_up(tmp_path):
    port, demo_dir = free_port(), tmp_path / "demo"
    up = make("demo-notebook-runtime-up", port, demo_dir)
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        password = json.loads((demo_dir / "demo-credentials.json").read_text())["alice"]
        client = signed_in(f"http://127.0.0.1:{port}", password)
        analysis = demo_id("workspace:analysis")
        client.post(f"/workspaces/{analysis}/stop/")  # its demo row says ready
        wait_for(client, analysis, "Stopped")
        client.post(f"/workspaces/{analysis}/start/")
        wait_for(client, analysis, "Running")
        status = opened(client, analysis)
        assert status.status_code == 200, status.text[:500]
        assert status.headers["content-type"].startswith("application/json")
        assert {"started", "last_activity", "kernels"} <= set(status.json())
        lab = client.get(f"/w/{analysis}/lab", follow_redirects=False)
        assert lab.status_code == 200 and "JupyterLab" in lab.text, lab.text[:500]
        client.post(f"/workspaces/{analysis}/stop/")
        wait_for(client, analysis, "Stopped")
        closed = opened(client, analysis)  # the product's page, not the runtime
        assert closed.status_code == 409, closed.text[:500]
        assert 'data-state="stopped"' in closed.text
        assert not analysis_containers()  # the stop removed it, not only `down`
    finally:
        down = make("demo-notebook-runtime-down", port, demo_dir)
    assert down.returncode == 0, down.stderr[-3000:]
    assert not (demo_dir / "serve.pid").exists()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    assert not analysis_containers()
