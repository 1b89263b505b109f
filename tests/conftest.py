"""Shared fixtures: personas, factories, and service requirements.

A test that needs PostgreSQL, Redis or Docker is marked ``needs_postgres`` /
``needs_redis`` / ``needs_docker``. Locally a missing service skips with the
reason; in CI (CI=true) it fails, because CI must run everything.
"""

import os
import socket
from urllib.parse import urlparse

import hypothesis  # noqa: F401 - see below
import pytest

# hypothesis is imported here, before any test starts a server thread: its
# pytest plugin would otherwise import it at the terminal summary, and that
# import runs ast.parse (@composite). On CPython < 3.11.8 the AST
# constructor's recursion counter is shared by all threads (gh-106905), so a
# thread formatting a traceback at that moment (3.11's error carets parse
# each line) made pytest exit 1 with "SystemError: AST constructor recursion
# depth mismatch" after every test had passed.

# Support modules that hold fixtures and asserts, imported by several tests.
pytest.register_assert_rewrite(
    "tests.fakes",
    "tests.integration.lifecycle_support",
    "tests.integration.console_support",
    "tests.integration.workspace_support",
    "tests.integration.proxy_support",
    "tests.integration.api_support",
)

from django.conf import settings  # noqa: E402

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing_service(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI must provide this service: {reason}", pytrace=False)
    pytest.skip(reason)


def _redis_up(url: str) -> bool:
    if not url:
        return False
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or 6379), 1
        ):
            return True
    except OSError:
        return False


def docker_url() -> str:
    return os.environ.get("NOTEBOOK_RUNTIME_DOCKER_URL") or os.environ.get(
        "DOCKER_HOST", ""
    )


@pytest.fixture(autouse=True)
def _service_requirements(request):
    marker = request.node.get_closest_marker
    engine = settings.DATABASES["default"]["ENGINE"]
    if marker("needs_postgres") and engine != "django.db.backends.postgresql":
        missing_service("needs PostgreSQL: set DATABASE_URL=postgres://...")
    if marker("needs_redis") and not _redis_up(settings.REDIS_URL):
        missing_service(
            "needs Redis: set REDIS_URL=redis://127.0.0.1:6379/0 and start it"
        )
    if marker("needs_docker"):
        url = docker_url()
        if not url:
            missing_service(
                "needs a Docker engine: set NOTEBOOK_RUNTIME_DOCKER_URL (see .ci/run)"
            )


@pytest.fixture
def personas(db):
    """admin (superuser), operator (staff, views the console), manager
    (IDE_MANAGE), alice and bob (users)."""
    from tests.factories import make_personas

    return make_personas()


@pytest.fixture
def admin_user(personas):
    return personas.admin


@pytest.fixture
def alice(personas):
    return personas.alice


@pytest.fixture
def bob(personas):
    return personas.bob


@pytest.fixture
def default_class(db):
    from tests.factories import ResourceClassFactory

    return ResourceClassFactory(id="small", is_default=True)


@pytest.fixture
def nothing_configured(settings, monkeypatch, tmp_path):
    """No gateway URL, no Docker engine, no Kubernetes configuration: the
    backends a demo row names cannot be built."""
    from kubernetes.config import kube_config

    from workers.backends import registry

    settings.NOTEBOOK_RUNTIME_GATEWAY_URL = ""
    settings.NOTEBOOK_RUNTIME_DOCKER_URL = ""
    monkeypatch.setattr(registry, "DEFAULT_DOCKER_SOCKET", tmp_path / "no.sock")
    monkeypatch.setattr(
        kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(tmp_path / "no-config")
    )
    registry.reset()
    yield
    registry.reset()
