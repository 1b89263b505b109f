"""The shared health probe against real loopback HTTP servers."""

from __future__ import annotations

import asyncio
import socket
from types import SimpleNamespace

import pytest

from tests.backends.jupyter_stub import HTTPStub
from tests.backends.jupyter_stub import authed as stub_authed
from workers.probe import Health, ProbeTarget, probe_many, probe_one, target_for_worker

TOKEN = "probe-token-0123456789"


def authed(body: object):
    return stub_authed(TOKEN, body)


@pytest.fixture
def serve():
    servers: list[HTTPStub] = []

    def start(routes, delay=0.0) -> HTTPStub:
        servers.append(HTTPStub(routes, delay))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


STATUS = {
    "connections": 0,
    "kernels": 1,
    "last_activity": "2026-03-01T12:00:00.5Z",
    "started": "2026-03-01T11:00:00Z",
}


def test_it_reads_jupyter_status_and_busy_kernels(serve):
    server = serve(
        {
            "/w/ws/api/status": authed(STATUS),
            "/w/ws/api/kernels": authed([{"id": "k", "execution_state": "busy"}]),
        }
    )
    result = probe_one(ProbeTarget(f"{server.url}/w/ws/", token=TOKEN))
    assert result.health == Health.READY
    assert result.kernels == 1 and result.busy is True
    assert result.last_activity.isoformat() == "2026-03-01T12:00:00.500000+00:00"
    assert result.latency_ms >= 0


def test_idle_kernels_without_connections_are_not_busy(serve):
    server = serve(
        {
            "/w/ws/api/status": authed(STATUS),
            "/w/ws/api/kernels": authed([{"id": "k", "execution_state": "idle"}]),
        }
    )
    assert probe_one(ProbeTarget(f"{server.url}/w/ws/", token=TOKEN)).busy is False


def test_a_wrong_token_is_an_error(serve):
    server = serve({"/w/ws/api/status": authed(STATUS)})
    result = probe_one(ProbeTarget(f"{server.url}/w/ws/", token="wrong"))
    assert (result.health, result.status_code) == (Health.ERROR, 403)


@pytest.mark.parametrize("status", [502, 503, 404])
def test_a_proxy_or_server_not_up_yet_is_starting(serve, status):
    server = serve({"/w/ws/api/status": lambda h: (status, {})})
    assert probe_one(ProbeTarget(f"{server.url}/w/ws/")).health == Health.STARTING


def test_a_closed_port_is_unreachable():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = probe_one(ProbeTarget(f"http://127.0.0.1:{port}/w/ws/"))
    assert result.health == Health.UNREACHABLE


def test_a_black_hole_costs_one_timeout():
    """Accepts the connection and never answers."""
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen()
        port = hole.getsockname()[1]
        result = probe_one(ProbeTarget(f"http://127.0.0.1:{port}/w/ws/"), timeout=0.3)
    assert result.health == Health.UNREACHABLE
    assert "0.3 s" in result.message


def test_code_server_uses_healthz(serve):
    server = serve(
        {
            "/healthz": lambda h: (
                200,
                {"status": "alive", "lastHeartbeat": 1767225600000},
            )
        }
    )
    result = probe_one(ProbeTarget(f"{server.url}/", ide_kind="code-server"))
    assert result.health == Health.READY and result.busy is True
    assert result.last_activity.year == 2026


def test_custom_images_use_their_health_path(serve):
    server = serve({"/w/ws/ready": lambda h: (200, {})})
    target = ProbeTarget(f"{server.url}/w/ws/", ide_kind="custom", health_path="/ready")
    assert probe_one(target).health == Health.READY


def test_garbage_answers_are_errors_not_crashes(serve):
    server = serve({"/w/ws/api/status": lambda h: (200, ["not", "a", "dict"])})
    assert probe_one(ProbeTarget(f"{server.url}/w/ws/")).health == Health.ERROR


def test_probe_many_keeps_order_and_bounds_concurrency(serve):
    ok = serve({"/w/a/api/status": lambda h: (200, {})}, delay=0.05)
    bad = serve({"/w/b/api/status": lambda h: (503, {})})
    targets = [ProbeTarget(f"{ok.url}/w/a/", key=str(i)) for i in range(20)]
    targets.insert(7, ProbeTarget(f"{bad.url}/w/b/", key="bad"))
    results = asyncio.run(probe_many(targets, timeout=5, concurrency=4))
    assert [r.target.key for r in results] == [t.key for t in targets]
    assert results[7].health == Health.STARTING
    assert {r.health for i, r in enumerate(results) if i != 7} == {Health.READY}
    assert 1 < ok.peak <= 4


def test_it_builds_a_target_from_a_worker_row():
    worker = SimpleNamespace(
        id="w1",
        endpoint="http://h:1/w/x/",
        access_token=TOKEN,
        launch_spec={"ide_kind": "custom", "health_path": "/ok"},
    )
    target = target_for_worker(worker)
    assert (target.ide_kind, target.health_path, target.key) == ("custom", "/ok", "w1")


def test_a_worker_without_an_endpoint_is_unreachable():
    assert probe_one(ProbeTarget("")).health == Health.UNREACHABLE
