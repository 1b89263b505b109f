"""Benchmark: one real JupyterLab, reached four ways, side by side.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/proxy_bench \\
    REDIS_URL=redis://127.0.0.1:6379/8 \\
        .venv/bin/python bench/proxy_bench.py [--requests 2000 --concurrency 20
                                               --executes 500 --megabytes 50]

Ways in: direct (the runtime's port, token header), the embedded proxy
(uvicorn serving config.asgi, session cookie) with its aiohttp client and
with httpx, nginx with the /w-auth/ endpoint (deploy/nginx/, in front of the
aiohttp app), and configurable-http-proxy, JupyterHub's proxy, as the anchor
(``npm install --prefix var/chp configurable-http-proxy``; bench only).

Measures small-request latency (``GET api/status``: p50 over --serial
requests per way from one client, the ways interleaved request by request,
the added cost; p50/p95 over --requests with
--concurrency clients), the kernel execute round trip
(``1+1`` over the kernel websocket: p50/p95 over --executes) and a
--megabytes download's throughput (best of --rounds), and JupyterLab's full
page load in Debian Chromium to the launcher (p50 of --page-loads, a fresh
browser context each: nothing cached). The ways take turns
in --rounds rounds and samples are pooled, so load drift on a shared
machine does not favour one of them. Prints ratios to direct
and to configurable-http-proxy. Load generator: aiohttp, on the same two
cores as everything else, so absolute figures include its own cost.
"""

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp  # noqa: E402
import scratch_db  # noqa: F401 - sets up Django on a scratch database
import websockets  # noqa: E402
from django.contrib.auth import (  # noqa: E402
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
)
from django.contrib.sessions.backends.db import SessionStore  # noqa: E402

from tests.backends.conftest import make_spec  # noqa: E402
from tests.factories import UserFactory, WorkerFactory, WorkspaceFactory  # noqa: E402
from tests.integration.test_proxy_nginx import nginx_config  # noqa: E402
from workers.backends.local import LocalBackend  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CHP = ROOT / "var" / "chp" / "node_modules" / ".bin" / "configurable-http-proxy"
TOKEN = "bench-token-" + uuid.uuid4().hex


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, process=None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            sys.exit(f"a server exited early: {process.args}")
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        time.sleep(0.1)
    sys.exit(f"nothing listening on {port}")


def session_for(user) -> str:
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return session.session_key


def start_runtime(root: Path):
    """A JupyterLab from the local backend and its ready worker row."""
    owner = UserFactory(username=f"bench-{uuid.uuid4().hex[:6]}")
    workspace = WorkspaceFactory(owner=owner, project__personal_owner=owner)
    backend = LocalBackend(root / "workspaces", grace_seconds=3)
    spec = make_spec(
        workspace_id=str(workspace.id),
        base_url=workspace.base_url,
        access_token=TOKEN,
        kernel_cull_idle_seconds=0,
    )
    ref = backend.launch(spec)
    port = ref.extra["port"]
    wait_port(port)
    endpoint = f"http://127.0.0.1:{port}{workspace.base_url}"
    WorkerFactory(
        workspace=workspace, status="ready", endpoint=endpoint, access_token=TOKEN
    )
    return backend, ref, workspace, port


def start_app(client: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {**os.environ, "LOG_LEVEL": "WARNING", "NOTEBOOK_PROXY_HTTP_CLIENT": client}
    env["SECURE_HTTPS"] = "0"  # plain HTTP on loopback: no redirect to https
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "config.asgi:application",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
         "--no-access-log"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    wait_port(port, process)
    return process, port


def start_nginx(tmp: Path, app_port: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    config = nginx_config(tmp, port, app_port)
    text = config.read_text().replace(
        f"access_log {tmp}/access.log upstreams;", "access_log off;"
    )
    config.write_text(text)
    process = subprocess.Popen(
        ["nginx", "-c", str(config), "-e", str(tmp / "error.log")]
    )
    wait_port(port, process)
    return process, port


def start_chp(runtime_port: int) -> tuple[subprocess.Popen, int] | None:
    if not CHP.exists():
        print(
            "configurable-http-proxy missing: npm install --prefix var/chp configurable-http-proxy"
        )
        return None
    port = free_port()
    process = subprocess.Popen(
        [str(CHP), "--ip", "127.0.0.1", "--port", str(port), "--api-ip", "127.0.0.1",
         "--api-port", str(free_port()), "--default-target",
         f"http://127.0.0.1:{runtime_port}", "--log-level", "warn"],
        env={**os.environ, "CONFIGPROXY_AUTH_TOKEN": uuid.uuid4().hex},
    )  # fmt: skip
    wait_port(port, process)
    return process, port


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def small_requests(base: str, headers: dict, total: int, concurrency: int):
    url = base + "api/status"
    timings: list[float] = []
    remaining = iter(range(total))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as http:
        for _ in range(50):  # warm up
            async with http.get(url) as r:
                assert r.status == 200, (url, r.status, await r.text())
                await r.read()

        async def client():
            for _ in remaining:
                started = time.perf_counter()
                async with http.get(url) as r:
                    await r.read()
                timings.append((time.perf_counter() - started) * 1000)

        await asyncio.gather(*(client() for _ in range(concurrency)))
    return timings


async def serial_requests(ways, total: int) -> dict[str, list[float]]:
    """One client, one request at a time, taking the ways in a new random
    order for every request: what each way adds is then measured under the
    same moment's load (runs of hundreds of requests per way drifted by
    more than a millisecond between runs)."""
    order = random.Random(total)
    sessions = {}
    timings: dict[str, list[float]] = {name: [] for name, *_ in ways}
    try:
        for name, base, headers in ways:
            sessions[name] = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=1), headers=headers
            )
            for _ in range(50):  # warm up: connections, caches
                async with sessions[name].get(base + "api/status") as r:
                    assert r.status == 200, (name, r.status, await r.text())
                    await r.read()
        for _ in range(total):
            for name, base, _headers in order.sample(ways, len(ways)):
                started = time.perf_counter()
                async with sessions[name].get(base + "api/status") as r:
                    await r.read()
                timings[name].append((time.perf_counter() - started) * 1000)
    finally:
        for session in sessions.values():
            await session.close()
    return timings


def execute_message(msg_id: str) -> str:
    return json.dumps(
        {
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "session": "b",
                       "username": "bench", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell",
            "content": {"code": "1+1", "silent": False, "allow_stdin": False},
        }
    )  # fmt: skip


async def executes(base: str, headers: dict, count: int) -> list[float]:
    async with (
        aiohttp.ClientSession(headers=headers) as http,
        http.post(base + "api/kernels", json={"name": "python3"}) as r,
    ):
        kernel = (await r.json())["id"]
    url = "ws" + base.removeprefix("http") + f"api/kernels/{kernel}/channels"
    timings = []
    async with websockets.connect(url, additional_headers=headers, max_size=None) as ws:
        for i in range(count + 20):
            msg_id = uuid.uuid4().hex
            started = time.perf_counter()
            await ws.send(execute_message(msg_id))
            while True:
                message = json.loads(await ws.recv())
                if (
                    message["parent_header"].get("msg_id") == msg_id
                    and message["msg_type"] == "execute_result"
                ):
                    break
            if i >= 20:  # the first ones wait for the kernel to start
                timings.append((time.perf_counter() - started) * 1000)
    async with aiohttp.ClientSession(headers=headers) as http:
        await http.delete(base + f"api/kernels/{kernel}")
    return timings


async def download(base: str, headers: dict, megabytes: int, times: int) -> float:
    best = 0.0
    async with aiohttp.ClientSession(headers=headers, auto_decompress=False) as http:
        for _ in range(times):
            size, started = 0, time.perf_counter()
            async with http.get(base + "files/big.bin") as r:
                assert r.status == 200, r.status
                async for chunk in r.content.iter_any():
                    size += len(chunk)
            assert size == megabytes * 1024 * 1024
            best = max(best, size / 1024 / 1024 / (time.perf_counter() - started))
    return best


CHROMIUM = "/usr/bin/chromium"
LAUNCHER = ".jp-LauncherCard"


def page_loads(ways, count: int) -> dict[str, list[float]]:
    """Seconds from navigation to JupyterLab's launcher, ``count`` per way,
    the ways taking turns. Cookies go in as cookies, the runtime's token as
    a header on every request (as a token-in-header client would send it)."""
    from playwright.sync_api import sync_playwright

    timings: dict[str, list[float]] = {name: [] for name, *_ in ways}
    if not count:
        return timings
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        for round_ in range(count + 1):  # round 0 warms the runtime up
            for name, base, headers in ways:
                seconds = _page_load(browser, base, headers)
                if round_:
                    timings[name].append(seconds)
        browser.close()
    return timings


def _page_load(browser, base: str, headers: dict) -> float:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    if "Cookie" in headers:
        name, _, value = headers["Cookie"].partition("=")
        context.add_cookies([{"name": name, "value": value, "url": base}])
    else:
        context.set_extra_http_headers(headers)
    page = context.new_page()
    started = time.perf_counter()
    page.goto(base + "lab")
    page.locator(LAUNCHER).first.wait_for(state="visible", timeout=120_000)
    seconds = time.perf_counter() - started
    context.close()
    return seconds


def run_ways(ways, args) -> list[dict]:
    """Every measurement for every way, in ``--rounds`` interleaved rounds
    (samples pooled per way), so drift in a shared machine's load spreads
    over all ways instead of favouring whichever ran last."""
    samples = {
        name: {"serial": [], "small": [], "exec": [], "mb_s": []} for name, *_ in ways
    }
    rounds = args.rounds
    for name, timings in asyncio.run(serial_requests(ways, args.serial)).items():
        samples[name]["serial"] = timings
    for _ in range(rounds):
        for name, base, headers in ways:
            got = samples[name]
            got["small"] += asyncio.run(
                small_requests(base, headers, args.requests // rounds, args.concurrency)
            )
            got["exec"] += asyncio.run(executes(base, headers, args.executes // rounds))
            got["mb_s"].append(asyncio.run(download(base, headers, args.megabytes, 1)))
    loads = page_loads(ways, args.page_loads)
    for name, *_ in ways:
        samples[name]["page"] = loads[name]
    return [_row(name, samples[name]) for name, *_ in ways]


def _row(name: str, got: dict) -> dict:
    row = {
        "way": name,
        "serial_p50": statistics.median(got["serial"]),
        "serial_p95": pct(got["serial"], 0.95),
        "status_p50": statistics.median(got["small"]),
        "status_p95": pct(got["small"], 0.95),
        "exec_p50": statistics.median(got["exec"]),
        "exec_p95": pct(got["exec"], 0.95),
        "mb_s": max(got["mb_s"]),
        "page_p50": statistics.median(got["page"]) if got["page"] else 0.0,
        "page_max": max(got["page"]) if got["page"] else 0.0,
    }
    print(
        f"{name:<24} 1 client p50 {row['serial_p50']:5.2f} ms"
        f"  p95 {row['serial_p95']:5.2f} ms"
        f"   {len(got['small'])} req p50 {row['status_p50']:6.2f} ms  p95 {row['status_p95']:6.2f} ms"
        f"   execute p50 {row['exec_p50']:6.2f} ms  p95 {row['exec_p95']:6.2f} ms"
        f"   download {row['mb_s']:7.1f} MB/s"
        f"   lab page load p50 {row['page_p50']:5.2f} s"
        f" (slowest of {len(got['page'])}: {row['page_max']:5.2f} s)",
        flush=True,
    )
    return row


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}" if base else "-"


def print_ratios(rows: list[dict]) -> None:
    by_name = {r["way"]: r for r in rows}
    for anchor in ("direct", "configurable-http-proxy"):
        if anchor not in by_name:
            continue
        base = by_name[anchor]
        print(
            f"\nratio to {anchor} (latency: lower is better; download: higher is better)"
        )
        for r in rows:
            print(
                f"{r['way']:<24} status p50 ×{r['status_p50'] / base['status_p50']:.2f}"
                f"  p95 ×{r['status_p95'] / base['status_p95']:.2f}"
                f"   execute p50 ×{r['exec_p50'] / base['exec_p50']:.2f}"
                f"  p95 ×{r['exec_p95'] / base['exec_p95']:.2f}"
                f"   download ×{r['mb_s'] / base['mb_s']:.2f}"
                f"   page load ×{_ratio(r['page_p50'], base['page_p50'])}"
            )
    direct = by_name["direct"]
    print("\nadded to a small request by one client (p50 minus direct's)")
    for r in rows[1:]:
        print(f"{r['way']:<24} +{r['serial_p50'] - direct['serial_p50']:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--serial", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--executes", type=int, default=500)
    parser.add_argument("--megabytes", type=int, default=50)
    parser.add_argument("--page-loads", type=int, default=5)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="proxy-bench-"))
    processes: list[subprocess.Popen] = []
    backend, ref, workspace, runtime_port = start_runtime(tmp)
    try:
        big = tmp / "workspaces" / str(workspace.id) / "big.bin"
        big.write_bytes(os.urandom(args.megabytes * 1024 * 1024))
        cookie = {"Cookie": f"sessionid={session_for(workspace.owner)}"}
        token = {"Authorization": f"token {TOKEN}"}
        prefix = workspace.base_url
        ways = [("direct", f"http://127.0.0.1:{runtime_port}{prefix}", token)]
        for client in ("aiohttp", "httpx"):
            process, port = start_app(client)
            processes.append(process)
            ways.append(
                (f"embedded ({client})", f"http://127.0.0.1:{port}{prefix}", cookie)
            )
            if client == "aiohttp":
                nginx, nginx_port = start_nginx(tmp, port)
                processes.append(nginx)
                ways.append(
                    (
                        "nginx + /w-auth/",
                        f"http://127.0.0.1:{nginx_port}{prefix}",
                        cookie,
                    )
                )
        chp = start_chp(runtime_port)
        if chp:
            processes.append(chp[0])
            ways.append(
                ("configurable-http-proxy", f"http://127.0.0.1:{chp[1]}{prefix}", token)
            )
        rows = run_ways(ways, args)
        print_ratios(rows)
    finally:
        for process in processes:
            process.terminate()
            process.wait(10)
        backend.terminate(ref)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
