"""The shipped nginx front proxy (deploy/nginx/) with a real nginx process
in front of the app and a real JupyterLab: nginx asks /w-auth/… and then
carries HTTP and the kernel websocket to the runtime itself."""

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import missing_service
from tests.factories import WorkspaceFactory
from tests.integration.proxy_support import free_port, start_running
from tests.integration.test_proxy_jupyter import (
    client_for,
    execute,
    kernel_socket,
    new_kernel,
)

pytest_plugins = ["tests.integration.proxy_support"]
pytestmark = [
    pytest.mark.needs_postgres,
    pytest.mark.needs_redis,
    pytest.mark.django_db(transaction=True),
]
DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "nginx"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
# Debian's dynamic modules, loaded as its /etc/nginx/nginx.conf does.
MODULES = Path("/etc/nginx/modules-enabled")
LUA_MODULE = Path("/usr/share/nginx/modules/ngx_http_lua_module.so")


def nginx_config(tmp: Path, port: int, app_port: int) -> Path:
    """The shipped server block, on a loopback port in front of the test
    app, inside a minimal non-daemon main config that writes only to tmp."""
    site = (DEPLOY / "notebook-fleet.conf").read_text()
    site = site.replace("listen 80;", f"listen 127.0.0.1:{port};")
    site = site.replace("server 127.0.0.1:8000;", f"server 127.0.0.1:{app_port};")
    site = site.replace(
        "/etc/nginx/notebook-fleet-app-proxy.conf",
        str(DEPLOY / "notebook-fleet-app-proxy.conf"),
    )
    (tmp / "site.conf").write_text(site)
    temp_paths = "\n".join(
        f"    {kind}_temp_path {tmp}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main = f"""
include {MODULES}/*.conf;
{"user root;" if os.geteuid() == 0 else ""}
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 512; }}
http {{
    log_format upstreams '$request_uri $status $upstream_addr';
    access_log {tmp}/access.log upstreams;
{temp_paths}
    include {tmp}/site.conf;
}}
"""
    (tmp / "nginx.conf").write_text(main)
    return tmp / "nginx.conf"


@pytest.fixture
def nginx_url(app_url, tmp_path):
    if not Path(NGINX).exists():
        missing_service("needs nginx: apt-get install nginx")
    if not LUA_MODULE.exists():
        missing_service("needs apt-get install libnginx-mod-http-lua lua-resty-core")
    port = free_port()
    config = nginx_config(tmp_path, port, int(app_url.rsplit(":", 1)[1]))
    process = subprocess.Popen(
        [NGINX, "-c", str(config), "-e", str(tmp_path / "error.log")]
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and process.poll() is None:
        try:
            httpx.get(url + "/healthz", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    assert process.poll() is None, (tmp_path / "error.log").read_text()
    yield url
    process.terminate()
    process.wait(10)


def test_nginx_serves_a_real_jupyterlab_after_asking_the_app(
    nginx_url, tmp_path, local_backend, tasks, alice, bob, default_class
):
    workspace = WorkspaceFactory(owner=alice, project__personal_owner=alice)
    worker = start_running(workspace, tasks)
    prefix = workspace.base_url
    with client_for(nginx_url, alice) as client:
        assert client.get(f"{prefix}api/status").status_code == 200
        kernel_id = new_kernel(client, prefix)
        with kernel_socket(nginx_url, prefix, kernel_id, alice) as socket:
            assert execute(socket, "1+1") == "2"
        lab = client.get(f"{prefix}lab")
        assert lab.status_code == 200 and worker.access_token not in lab.text
    runtime = worker.endpoint.split("/")[2]
    log = (tmp_path / "access.log").read_text()
    assert re.search(rf"^{prefix}api/status 200 {re.escape(runtime)}$", log, re.M), log
    with client_for(nginx_url, bob) as client:
        refused = client.get(f"{prefix}api/status")
        assert refused.status_code == 404 and "No such workspace" in refused.text
    anonymous = httpx.get(f"{nginx_url}{prefix}lab")
    assert anonymous.status_code == 302
    assert anonymous.headers["location"] == f"/login/?next={prefix}lab"


def test_nginx_strips_platform_secrets_and_refuses_traversal(
    nginx_url, recorder, alice
):
    import http.client

    from tests.integration.proxy_support import (
        forward_with_platform_secrets,
        session_cookie,
    )

    prefix, _ = forward_with_platform_secrets(nginx_url, recorder, alice)
    count = len(recorder.received)
    connection = http.client.HTTPConnection(nginx_url.removeprefix("http://"))
    cookie = "; ".join(f"{k}={v}" for k, v in session_cookie(alice).items())
    for suffix in ("%2e%2e/%2e%2e/admin/", "api%2f..%2fx", "a/./b"):
        connection.request("GET", prefix + suffix, headers={"Cookie": cookie})
        answer = connection.getresponse()
        answer.read()
        assert answer.status in (400, 404), suffix
    assert len(recorder.received) == count


def test_nginx_keeps_connections_to_the_runtime_alive(nginx_url, recorder, alice):
    """A connection per request costs the runtime more than the request
    (bench/proxy_bench.py); nginx reuses one, and still asks the app every
    time (a stopped worker is refused at once)."""
    from tests.integration.proxy_support import recorded_worker, session_cookie

    worker = recorded_worker(alice, recorder)
    url = f"{nginx_url}{worker.workspace.base_url}api/status"
    with httpx.Client(cookies=session_cookie(alice)) as client:
        for _ in range(5):
            assert client.get(url).status_code == 200
        peers = {seen["peer"] for seen in recorder.received}
        assert len(recorder.received) == 5 and len(peers) == 1, peers
        worker.status = "stopped"
        worker.save(update_fields=["status"])
        assert client.get(url).status_code == 409
    assert len(recorder.received) == 5
