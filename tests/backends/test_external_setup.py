"""The setup step over the runtime gateway protocol: the request's ``setup``
field as documented (checked against the OpenAPI schema), credentials
sealed for the gateway, and the reference gateway running the step for
real (a git repository and a package index on loopback)."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from pathlib import Path

import httpx
import jsonschema
import psutil
import pytest
import yaml

from tests.backends.conftest import TOKEN, make_spec, start_gateway, wait_until
from tests.backends.test_external import ScriptedBackend
from tests.setup_support import Remote, alpha_beta_index
from workers.backends.base import BackendError, ErrorCode, Phase, SetupSpec
from workers.backends.external import ExternalBackend
from workers.backends.external.sealing import gateway_unsealer, seal_for_gateway
from workers.backends.external.server import Gateway, serve_in_thread
from workers.backends.local import LocalBackend

DOCUMENT = Path(__file__).resolve().parents[2] / "docs/runtime-gateway.openapi.yaml"
GIT_SECRET = "deploy:ghtok-9e9e9e9e"  # noqa: S105 - test credentials
INDEX_SECRET = "bot:mirror-pw-7d7d7d7d"  # noqa: S105
SECRET_PARTS = ("ghtok-9e9e9e9e", "mirror-pw-7d7d7d7d")


def control_plane_unseal(sealed: str) -> str:
    """The tests' stand-in for ``secret_box.unseal``."""
    return sealed.removeprefix("cp-sealed:")


def setup_spec(**changes) -> SetupSpec:
    return replace(
        SetupSpec(
            repository_url="https://git.example.org/team/analysis.git",
            repository_ref="v1.2",
            requirements_path="env/requirements.txt",
            kernel_name="analysis",
            fetch_policy="mirror",
            index_url="https://mirror.example.org/simple",
            git_secret_sealed=f"cp-sealed:{GIT_SECRET}",
            index_secret_sealed=f"cp-sealed:{INDEX_SECRET}",
        ),
        **changes,
    )


class Recording(ScriptedBackend):
    def __init__(self):
        super().__init__()
        self.specs = []

    def launch(self, spec):
        self.specs.append(spec)
        return super().launch(spec)


@pytest.fixture
def recorded():
    """A gateway recording the specs it gets, and a client recording the
    bodies it sends."""
    backend = Recording()
    server = serve_in_thread(Gateway(backend, TOKEN))
    bodies: list[bytes] = []

    class Tap(httpx.HTTPTransport):
        def handle_request(self, request):
            bodies.append(request.read())
            return super().handle_request(request)

    client = ExternalBackend(
        f"http://127.0.0.1:{server.server_port}",
        TOKEN,
        timeout=5,
        transport=Tap(),
        unseal=control_plane_unseal,
    )
    yield backend, client, bodies
    server.shutdown()
    server.server_close()


def launch_spec_schema() -> dict:
    """The document's LaunchSpec, its references resolved in the document."""
    document = yaml.safe_load(DOCUMENT.read_text())
    return {"$ref": "#/components/schemas/LaunchSpec", **document}


def test_the_setup_field_carries_the_repository_and_sealed_credentials(recorded):
    backend, client, bodies = recorded
    client.launch(make_spec(setup=setup_spec()))
    (received,) = backend.specs
    assert (
        received.setup.repository_url,
        received.setup.repository_ref,
        received.setup.requirements_path,
        received.setup.fetch_policy,
    ) == (
        "https://git.example.org/team/analysis.git",
        "v1.2",
        "env/requirements.txt",
        "mirror",
    )
    unseal = gateway_unsealer(TOKEN)
    assert unseal(received.setup.git_secret_sealed) == GIT_SECRET
    assert unseal(received.setup.index_secret_sealed) == INDEX_SECRET
    wire = b"".join(bodies).decode()
    assert not any(part in wire for part in SECRET_PARTS)
    assert "cp-sealed:" not in wire  # the control plane's ciphertext stays home
    # What went over the wire is what the OpenAPI document describes.
    body = json.loads(bodies[0])
    jsonschema.Draft202012Validator(launch_spec_schema()).validate(body)
    documented = yaml.safe_load(DOCUMENT.read_text())["components"]["schemas"]
    assert set(documented["SetupSpec"]["properties"]) == set(body["setup"])


def test_another_gateways_token_cannot_read_the_credentials(recorded):
    backend, client, _ = recorded
    client.launch(make_spec(setup=setup_spec()))
    sealed = backend.specs[0].setup.git_secret_sealed
    with pytest.raises(Exception, match="not sealed with this gateway's token"):
        gateway_unsealer("another-token-" + "x" * 20)(sealed)


def test_a_repository_url_with_credentials_is_refused_on_both_sides(recorded):
    backend, client, _ = recorded
    spec = make_spec(
        setup=setup_spec(repository_url="https://bot:hunter22@git.example.org/x.git")
    )
    with pytest.raises(BackendError) as raised:
        client.launch(spec)
    assert raised.value.code == ErrorCode.INVALID_SPEC
    assert "hunter22" not in raised.value.message
    assert backend.specs == []


def test_the_reference_gateway_refuses_a_url_with_credentials(tmp_path):
    gateway = Gateway(LocalBackend(tmp_path / "workspaces"), TOKEN)
    server = serve_in_thread(gateway)
    try:
        body = make_spec(
            setup=setup_spec(repository_url="https://bot:hunter22@git.example.org/x")
        ).to_json()
        response = httpx.post(
            f"http://127.0.0.1:{server.server_port}/v1/runtimes",
            json=body,
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
    finally:
        server.shutdown()
        server.server_close()
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_spec"
    assert "hunter22" not in response.text


# --- the reference gateway, running the step for real ---------------------------


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    root = tmp_path_factory.mktemp("gateway-setup")
    process, url = start_gateway(root, TOKEN)
    yield url, root
    cleanup = LocalBackend(root / "workspaces", state_dir=root / "state")
    for ref in cleanup.list_managed():
        cleanup.terminate(ref)
    process.terminate()
    process.wait(10)


@pytest.fixture
def index(tmp_path):
    with alpha_beta_index(tmp_path) as index:
        yield index


@pytest.fixture
def remote(tmp_path):
    remote = Remote(tmp_path)
    remote.commit({"requirements.txt": "alpha\nbeta\n"})
    return remote


def local_setup(remote, index, **changes) -> SetupSpec:
    return setup_spec(
        repository_url=remote.url,
        repository_ref="",
        requirements_path="",
        index_url=index.url,
        allow_local_repository=True,
        timeout_seconds=120,
        **changes,
    )


def observe_until(client, ref, phases, timeout=120.0):
    seen: list[str] = []

    def done():
        observation = client.observe(ref)
        lines = [e for e in observation.events if e.startswith("setup: ")]
        if len(lines) > len(seen):
            seen[:] = lines
        return observation if observation.phase in phases else None

    return seen, wait_until(done, f"phase in {phases}", timeout)


def test_the_reference_gateway_runs_the_setup_step(gateway, remote, index):
    url, _ = gateway
    client = ExternalBackend(url, TOKEN, timeout=5, unseal=control_plane_unseal)
    ref = client.launch(make_spec(setup=local_setup(remote, index)))
    try:
        lines, observation = observe_until(client, ref, {Phase.RUNNING, Phase.FAILED})
        assert observation.phase == Phase.RUNNING, observation
        assert lines[0].startswith("setup: cloning file://")
        assert "setup: installing 2 packages" in lines
        basic = "Basic " + base64.b64encode(INDEX_SECRET.encode()).decode()
        assert basic in index.authorizations  # unsealed on the gateway's side
        environ = psutil.Process(ref.extra["pid"]).environ()
        assert not [k for k in environ if k.startswith("NOTEBOOK_FLEET_SETUP")]
        assert not any(p in json.dumps(environ) for p in SECRET_PARTS)
        assert not any(p in client.logs(ref, tail=500) for p in SECRET_PARTS)
    finally:
        client.terminate(ref)


def test_a_failed_step_reaches_the_control_plane_as_its_error_code(
    gateway, remote, index
):
    url, _ = gateway
    remote.commit({"requirements.txt": "alpha\ngamma-missing\n"})
    client = ExternalBackend(url, TOKEN, timeout=5, unseal=control_plane_unseal)
    ref = client.launch(make_spec(setup=local_setup(remote, index)))
    try:
        _, observation = observe_until(client, ref, {Phase.RUNNING, Phase.FAILED})
        assert observation.phase == Phase.FAILED
        assert observation.error_code == ErrorCode.DEPENDENCY_SETUP_FAILED
        assert "gamma-missing" in observation.message
    finally:
        client.terminate(ref)


def test_a_credential_sealed_for_another_token_is_refused(gateway, remote, index):
    url, _ = gateway
    spec = make_spec(setup=local_setup(remote, index))
    body = spec.to_json()
    body["setup"]["git_secret_sealed"] = seal_for_gateway("other-" + "y" * 20, "x:y")
    body["setup"]["index_secret_sealed"] = ""
    response = httpx.post(
        f"{url}/v1/runtimes", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "dependency_setup_failed"
