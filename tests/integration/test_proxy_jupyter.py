"""The embedded proxy in front of real JupyterLab runtimes from the local
backend: HTTP, the kernel websocket, 50 MB each way, a stop closing what is
open, and the stale-route race (a stopped worker's route must never reach
the next worker on the same port)."""

import base64
import hashlib
import json
import os
import uuid

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.factories import WorkspaceFactory
from tests.integration.proxy_support import session_cookie, start_running, stop
from workers.backends import local as local_module
from workspaces.services import workspace_stop

pytest_plugins = ["tests.integration.proxy_support"]
pytestmark = [
    pytest.mark.needs_postgres,
    pytest.mark.needs_redis,
    pytest.mark.django_db(transaction=True),
]
MB = 1024 * 1024


def client_for(app_url: str, user) -> httpx.Client:
    return httpx.Client(base_url=app_url, cookies=session_cookie(user), timeout=60)


def kernel_socket(app_url: str, prefix: str, kernel_id: str, user):
    cookie = "; ".join(f"{k}={v}" for k, v in session_cookie(user).items())
    url = f"ws{app_url.removeprefix('http')}{prefix}api/kernels/{kernel_id}/channels"
    return connect(url, additional_headers={"Cookie": cookie}, open_timeout=30)


def execute(socket, code: str) -> str:
    """Run ``code`` over the Jupyter kernel protocol; its text/plain result."""
    msg_id = uuid.uuid4().hex
    socket.send(
        json.dumps(
            {
                "header": {
                    "msg_id": msg_id,
                    "msg_type": "execute_request",
                    "session": uuid.uuid4().hex,
                    "username": "test",
                    "version": "5.3",
                },
                "parent_header": {},
                "metadata": {},
                "channel": "shell",
                "content": {"code": code, "silent": False, "allow_stdin": False},
            }
        )
    )
    while True:
        message = json.loads(socket.recv(timeout=60))
        if message.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        if message["msg_type"] == "execute_result":
            return message["content"]["data"]["text/plain"]
        if message["msg_type"] == "error":
            raise AssertionError(message["content"])


def new_kernel(client: httpx.Client, prefix: str) -> str:
    response = client.post(f"{prefix}api/kernels", json={"name": "python3"})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_it_proxies_a_real_jupyterlab_http_kernel_and_large_files(
    app_url, local_backend, tasks, alice, default_class
):
    workspace = WorkspaceFactory(owner=alice, project__personal_owner=alice)
    start_running(workspace, tasks)
    prefix = workspace.base_url
    with client_for(app_url, alice) as client:
        status = client.get(f"{prefix}api/status")
        assert status.status_code == 200 and "kernels" in status.json()
        kernel_id = new_kernel(client, prefix)
        with kernel_socket(app_url, prefix, kernel_id, alice) as socket:
            assert execute(socket, "1+1") == "2"

        payload = os.urandom(50 * MB)
        body = {
            "type": "file",
            "format": "base64",
            "content": base64.b64encode(payload).decode(),
        }
        saved = client.put(f"{prefix}api/contents/big.bin", json=body)
        assert saved.status_code in (200, 201), saved.text
        digest = hashlib.sha256()
        with client.stream("GET", f"{prefix}files/big.bin") as download:
            assert download.status_code == 200
            for chunk in download.iter_raw():
                digest.update(chunk)
        assert digest.hexdigest() == hashlib.sha256(payload).hexdigest()
        part = client.get(f"{prefix}files/big.bin", headers={"Range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == payload[100:200]
        lab = client.get(f"{prefix}lab")
        assert lab.status_code == 200 and "jupyter-config-data" in lab.text
        worker = workspace.workers.get()
        assert worker.access_token not in lab.text


def test_a_stop_refuses_the_next_request_and_closes_open_sockets(
    app_url, local_backend, tasks, alice, default_class
):
    workspace = WorkspaceFactory(owner=alice, project__personal_owner=alice)
    worker = start_running(workspace, tasks)
    prefix = workspace.base_url
    with client_for(app_url, alice) as client:
        kernel_id = new_kernel(client, prefix)
        with kernel_socket(app_url, prefix, kernel_id, alice) as socket:
            assert execute(socket, "1+1") == "2"
            # Stop requested, runtime still alive: the proxy itself closes.
            workspace_stop(workspace=workspace, actor=alice)
            with pytest.raises(ConnectionClosed):
                while True:
                    socket.recv(timeout=20)
        assert client.get(f"{prefix}api/status").status_code == 409
    tasks.run_all()
    worker.refresh_from_db()
    assert worker.status == "stopped"


def test_logging_out_closes_the_sessions_open_ide_sockets(
    app_url, local_backend, tasks, alice, default_class
):
    """The runtime keeps running; only the session that logged out loses its
    socket, at once, without waiting for the re-check interval."""
    from django.conf import settings
    from django.test import Client

    workspace = WorkspaceFactory(owner=alice, project__personal_owner=alice)
    start_running(workspace, tasks)
    prefix = workspace.base_url
    cookies = session_cookie(alice)
    with httpx.Client(base_url=app_url, cookies=cookies, timeout=60) as client:
        kernel_id = new_kernel(client, prefix)
    header = "; ".join(f"{k}={v}" for k, v in cookies.items())
    url = f"ws{app_url.removeprefix('http')}{prefix}api/kernels/{kernel_id}/channels"
    with connect(url, additional_headers={"Cookie": header}, open_timeout=30) as socket:
        assert execute(socket, "1+1") == "2"
        browser = Client()
        browser.cookies[settings.SESSION_COOKIE_NAME] = cookies[
            settings.SESSION_COOKIE_NAME
        ]
        assert browser.post("/logout/").status_code == 302
        with pytest.raises(ConnectionClosed):
            while True:
                socket.recv(timeout=10)
    with client_for(app_url, alice) as other_session:
        assert other_session.get(f"{prefix}api/status").status_code == 200


def test_a_stopped_route_never_reaches_the_next_worker_on_its_port(
    app_url, local_backend, tasks, alice, bob, default_class, monkeypatch
):
    """The reference's stale-route deadlock, literally: alice's worker A
    stops, bob's worker B starts on the same host and port; alice's
    requests and her open socket to /w/A/ never reach B."""
    alices = WorkspaceFactory(owner=alice, project__personal_owner=alice)
    worker_a = start_running(alices, tasks)
    port = worker_a.runtime_ref["extra"]["port"]
    a_prefix = alices.base_url
    with client_for(app_url, alice) as client:
        kernel_id = new_kernel(client, a_prefix)
        with kernel_socket(app_url, a_prefix, kernel_id, alice) as socket:
            assert execute(socket, "1+1") == "2"
            stop(alices, tasks, worker_a)
            monkeypatch.setattr(local_module, "free_port", lambda host: port)
            bobs = WorkspaceFactory(owner=bob, project__personal_owner=bob)
            worker_b = start_running(bobs, tasks)
            assert worker_b.runtime_ref["extra"]["port"] == port
            with pytest.raises(ConnectionClosed):
                socket.send("{}")
                while True:
                    socket.recv(timeout=20)
        for path in ("api/status", "lab", f"api/kernels/{kernel_id}"):
            assert client.get(f"{a_prefix}{path}").status_code == 409
        with pytest.raises(InvalidStatus):
            kernel_socket(app_url, a_prefix, kernel_id, alice)
    log = local_backend.logs(local_backend_ref(worker_b), tail=10_000)
    assert str(alices.id) not in log
    # And had a stale route existed, B's runtime checks its own token.
    direct = httpx.get(
        f"{worker_b.endpoint}api/status",
        headers={"Authorization": f"token {worker_a.access_token}"},
    )
    assert direct.status_code == 403


def local_backend_ref(worker):
    from workers.backends.base import RuntimeRef

    return RuntimeRef.from_json(worker.runtime_ref)


@pytest.fixture
def gateway_through(monkeypatch):
    """Point jupyter_server's remote-kernel client (the one behind
    ``jupyter server --gateway-url``) at a front URL with a session cookie.
    Its REST calls carry ``GatewayClient.headers``; its kernel socket
    (websocket-client's ``create_connection``) takes no configured headers,
    so the cookie is added to that call."""
    from jupyter_server.gateway import managers
    from jupyter_server.gateway.gateway_client import GatewayClient

    def configure(front_url: str, prefix: str, user) -> None:
        cookie = "; ".join(f"{k}={v}" for k, v in session_cookie(user).items())
        GatewayClient.clear_instance()
        GatewayClient.instance(
            url=f"{front_url}{prefix.rstrip('/')}",
            headers=json.dumps({"Cookie": cookie}),
            request_timeout=60.0,
        )
        create = managers.websocket.create_connection
        monkeypatch.setattr(
            managers.websocket,
            "create_connection",
            lambda url, **kw: create(url, cookie=cookie, **kw),
        )

    yield configure
    GatewayClient.clear_instance()


def small_notebook():
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    return new_notebook(
        cells=[
            new_markdown_cell("# Through the proxy"),
            new_code_cell("import os\nanswer = 6 * 7"),
            new_code_cell("print('answer:', answer)"),
            new_code_cell("answer + 1"),
            new_code_cell("os.getcwd()"),
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    ), nbformat


def test_nbclient_runs_a_notebook_on_the_runtime_through_the_proxy(
    app_url, local_backend, tasks, alice, default_class, gateway_through
):
    """nbclient drives the kernel with jupyter_server's gateway kernel
    manager and client: kernel start, every execute and the shutdown go
    over the proxy's HTTP and kernel websocket to the real Jupyter Server,
    and the kernel runs in alice's workspace on the runtime."""
    from jupyter_server.gateway.managers import GatewayKernelManager
    from nbclient import NotebookClient

    workspace = WorkspaceFactory(owner=alice, project__personal_owner=alice)
    start_running(workspace, tasks)
    gateway_through(app_url, workspace.base_url, alice)
    notebook, nbformat = small_notebook()

    NotebookClient(
        notebook,
        kernel_manager_class=GatewayKernelManager,
        timeout=60,
        startup_timeout=60,
    ).execute()

    nbformat.validate(notebook)
    outputs = [cell.get("outputs") for cell in notebook.cells[1:]]
    assert outputs[0] == []
    assert outputs[1][0]["name"] == "stdout"
    assert outputs[1][0]["text"] == "answer: 42\n"
    assert outputs[2][0]["data"]["text/plain"] == "43"
    assert outputs[2][0]["execution_count"] == 3
    assert outputs[3][0]["data"]["text/plain"].strip("'").endswith(str(workspace.id))
    with client_for(app_url, alice) as http:  # nbclient shut its kernel down
        assert http.get(f"{workspace.base_url}api/kernels").json() == []
