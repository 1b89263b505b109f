"""The runtime gateway protocol over real HTTP: the external client against
the reference gateway, with a scripted backend for the failure modes."""

from __future__ import annotations

import httpx
import pytest

from tests.backends.conftest import TOKEN, make_spec, start_gateway
from workers.backends.base import (
    BackendError,
    ErrorCode,
    ListedRuntime,
    Observation,
    Phase,
    RuntimeBackend,
    RuntimeRef,
)
from workers.backends.external import ExternalBackend
from workers.backends.external.server import Gateway, serve_in_thread
from workers.backends.naming import runtime_labels


class ScriptedBackend(RuntimeBackend):
    """Answers as told: ``raises`` maps a method name to the BackendError it
    raises; otherwise runtimes live in a dict."""

    name = "scripted"

    def __init__(self):
        self.runtimes: dict[str, dict] = {}
        self.raises: dict[str, BackendError] = {}

    def _maybe_raise(self, method: str) -> None:
        if method in self.raises:
            raise self.raises[method]

    def launch(self, spec):
        self._maybe_raise("launch")
        self.runtimes.setdefault(spec.worker_id, {"labels": runtime_labels(spec)})
        return self._ref(spec.worker_id)

    def observe(self, ref):
        if ref.worker_id not in self.runtimes:
            return Observation(Phase.NOT_FOUND)
        return Observation(
            Phase.RUNNING, "http://10.0.0.9:8888/w/x/", "up", ("Scheduled: ok",)
        )

    def terminate(self, ref):
        self._maybe_raise("terminate")
        self.runtimes.pop(ref.worker_id, None)

    def list_runtimes(self):
        self._maybe_raise("list_managed")
        return [ListedRuntime(self._ref(w), Phase.RUNNING) for w in self.runtimes]

    def logs(self, ref, tail=100):
        return "\n".join(f"line {i}" for i in range(tail))

    def _ref(self, worker_id):
        return RuntimeRef(
            self.name,
            worker_id,
            worker_id,
            extra={"labels": self.runtimes[worker_id]["labels"]},
        )


@pytest.fixture
def scripted():
    backend = ScriptedBackend()
    server = serve_in_thread(Gateway(backend, TOKEN))
    yield (
        backend,
        ExternalBackend(f"http://127.0.0.1:{server.server_port}", TOKEN, timeout=2),
    )
    server.shutdown()
    server.server_close()


def test_it_speaks_the_protocol_end_to_end(scripted):
    backend, client = scripted
    spec = make_spec()
    ref = client.launch(spec)
    assert (ref.backend, ref.worker_id) == ("external", spec.worker_id)
    observation = client.observe(ref)
    assert observation.phase == Phase.RUNNING
    assert observation.events == ("Scheduled: ok",)
    assert client.logs(ref, tail=3) == "line 0\nline 1\nline 2"
    assert [r.worker_id for r in client.list_managed()] == [spec.worker_id]
    client.terminate(ref)
    client.terminate(ref)
    assert client.observe(ref).phase == Phase.NOT_FOUND


def test_it_answers_201_then_200_for_the_same_worker(scripted):
    backend, client = scripted
    body = make_spec().to_json()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    first = httpx.post(f"{client.base_url}/v1/runtimes", json=body, headers=headers)
    second = httpx.post(f"{client.base_url}/v1/runtimes", json=body, headers=headers)
    assert (first.status_code, second.status_code) == (201, 200)
    assert len(backend.runtimes) == 1


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (BackendError(ErrorCode.CONFLICT, "taken"), 409),
        (BackendError(ErrorCode.QUOTA_EXCEEDED, "no GPUs left"), 403),
        (
            BackendError(ErrorCode.GATEWAY_UNREACHABLE, "condor down", retryable=True),
            503,
        ),
        (BackendError(ErrorCode.IMAGE_PULL_FAILED, "no such image"), 500),
    ],
)
def test_it_carries_error_codes_over_http(scripted, error, status):
    backend, client = scripted
    backend.raises["launch"] = error
    response = httpx.post(
        f"{client.base_url}/v1/runtimes",
        json=make_spec().to_json(),
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert response.status_code == status
    with pytest.raises(BackendError) as raised:
        client.launch(make_spec())
    assert (raised.value.code, raised.value.retryable) == (error.code, error.retryable)


def test_it_rejects_a_bad_token_and_a_bad_body(scripted):
    _, client = scripted
    with pytest.raises(BackendError) as raised:
        ExternalBackend(client.base_url, "wrong-token").list_managed()
    assert "401" in raised.value.message
    response = httpx.post(
        f"{client.base_url}/v1/runtimes",
        content=b"{not json",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_spec"


def test_it_filters_the_list_by_label(scripted):
    backend, client = scripted
    client.launch(make_spec(labels={"team": "ml"}))
    client.launch(make_spec(labels={"team": "web"}))
    response = httpx.get(
        f"{client.base_url}/v1/runtimes",
        params={"label_selector": "team=web"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert [i["extra"]["labels"]["team"] for i in response.json()["items"]] == ["web"]


def test_an_unreachable_gateway_is_unknown_and_retryable():
    from workers.backends.local_process import free_port

    client = ExternalBackend(f"http://127.0.0.1:{free_port('127.0.0.1')}", TOKEN)
    ref = RuntimeRef("external", "w1", "w1")
    assert client.observe(ref).phase == Phase.UNKNOWN
    with pytest.raises(BackendError) as raised:
        client.terminate(ref)
    assert raised.value.code == ErrorCode.GATEWAY_UNREACHABLE and raised.value.retryable


def test_the_gateway_cli_needs_a_token(tmp_path, monkeypatch):
    monkeypatch.delenv("NOTEBOOK_RUNTIME_GATEWAY_TOKEN", raising=False)
    from workers.backends.external.__main__ import main

    with pytest.raises(SystemExit):
        main(["--port", "0", "--workspaces-dir", str(tmp_path)])


def test_the_gateway_cli_serves_the_protocol(tmp_path):
    process, url = start_gateway(tmp_path, TOKEN)
    try:
        assert ExternalBackend(url, TOKEN).list_managed() == []
    finally:
        process.terminate()
        process.wait(10)


def test_the_openapi_document_matches_the_code(scripted):
    import dataclasses
    from pathlib import Path

    import yaml

    from workers.backends.base import LaunchSpec, Resources

    document = yaml.safe_load(
        (
            Path(__file__).resolve().parents[2] / "docs/runtime-gateway.openapi.yaml"
        ).read_text()
    )
    schemas = document["components"]["schemas"]
    assert set(schemas["LaunchSpec"]["properties"]) == {
        f.name for f in dataclasses.fields(LaunchSpec)
    }
    assert set(schemas["Resources"]["properties"]) == {
        f.name for f in dataclasses.fields(Resources)
    }
    assert set(schemas["Observation"]["properties"]["phase"]["enum"]) == {
        p.value for p in Phase
    }
    _, client = scripted
    headers = {"Authorization": f"Bearer {TOKEN}"}
    for path, operations in document["paths"].items():
        url = client.base_url + path.replace("{worker_id}", "w1")
        for method in set(operations) & {"get", "delete"}:
            response = httpx.request(method.upper(), url, headers=headers)
            assert response.status_code != 404 or response.json()["code"] != "no_route"
