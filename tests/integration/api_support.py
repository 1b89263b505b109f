"""Calling /api/v1/ in tests: a client that checks every response against
the OpenAPI document the server itself serves (strictly: no undeclared
status code, no undeclared field), and token helpers."""

from __future__ import annotations

import copy
import json
import re
from functools import cache

import jsonschema
import pytest
from django.test import Client

API = "/api/v1"


@cache
def served_openapi() -> dict:
    response = Client().get(f"{API}/openapi.json")
    assert response.status_code == 200, response.content
    return response.json()


def _strict(node):
    """Every object schema with properties refuses other properties, so an
    undeclared field in a response fails the check."""
    if isinstance(node, dict):
        node = {key: _strict(value) for key, value in node.items()}
        if node.get("type") == "object" and "properties" in node:
            node.setdefault("additionalProperties", False)
        return node
    if isinstance(node, list):
        return [_strict(value) for value in node]
    return node


@cache
def _components() -> dict:
    return _strict(copy.deepcopy(served_openapi()["components"]))


def _operation(method: str, path: str) -> dict:
    for template, operations in served_openapi()["paths"].items():
        pattern = re.sub(r"\{[^}]+\}", r"[^/]+", template) + "$"
        if re.match(pattern, path) and method in operations:
            return operations[method]
    raise AssertionError(f"{method.upper()} {path} is not in the served OpenAPI")


def assert_conforms(method: str, path: str, response) -> None:
    """``response`` is one the OpenAPI document declares for this call."""
    responses = _operation(method, path.split("?")[0])["responses"]
    status = str(response.status_code)
    assert status in responses, (
        f"{method.upper()} {path} answered {status}, not declared in "
        f"{sorted(responses)}: {response.content[:500]!r}"
    )
    content = responses[status].get("content")
    if content is None:
        assert response.content == b"", response.content
        return
    assert response["Content-Type"].startswith("application/json")
    schema = {**content["application/json"]["schema"], "components": _components()}
    jsonschema.validate(json.loads(response.content), schema)


class ApiClient(Client):
    """A test client whose every /api/v1/ answer is checked against the
    served OpenAPI document; ``token=`` sends it as a bearer token."""

    def __init__(self, *args, token: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if token:
            self.defaults["HTTP_AUTHORIZATION"] = f"Bearer {token}"

    def request(self, **request):
        response = super().request(**request)
        path = request["PATH_INFO"]
        if path.startswith(f"{API}/ide"):
            assert_conforms(request["REQUEST_METHOD"].lower(), path, response)
        return response

    def post_json(self, path: str, data=None, **extra):
        return self.post(
            path, data=data or {}, content_type="application/json", **extra
        )


@pytest.fixture
def tasks(monkeypatch):
    """The task broker, recorded: starts and stops are enqueued, not run."""
    from tests.fakes import TaskRecorder
    from workers.services import queueing

    recorder = TaskRecorder()
    monkeypatch.setattr(queueing, "_send", recorder)
    return recorder


@pytest.fixture
def api_token(alice):
    from accounts.services import api_token_create

    _, raw = api_token_create(user=alice, name="script", expires_in_days=30)
    return raw


@pytest.fixture
def api(api_token):
    """alice's API client, authenticated with her personal token."""
    return ApiClient(token=api_token)
