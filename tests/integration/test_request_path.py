"""The request path under ASGI: the middleware chain runs in one thread,
and the bench-only query-count header."""

import asgiref.sync
import httpx
import pytest
from django.test import Client, override_settings

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_request_hops_to_a_thread_a_few_times_not_per_middleware(
    monkeypatch,
):
    """Stock Django made 38 thread hand-offs for one console page (two per
    async ``MiddlewareMixin``); ``SyncChainASGIHandler`` makes a few."""
    from config.asgi import application

    hops = []
    original = asgiref.sync.SyncToAsync.__call__

    async def counted(self, *args, **kwargs):
        hops.append(self.func)
        return await original(self, *args, **kwargs)

    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
        await c.get("/healthz")  # the first request sets things up
        monkeypatch.setattr(asgiref.sync.SyncToAsync, "__call__", counted)
        response = await c.get("/healthz")
    assert response.status_code == 200
    assert response.headers["X-Request-ID"]  # the middleware still ran
    assert len(hops) <= 6, hops


def test_the_query_count_header_counts_the_requests_statements(admin_user):
    client = Client()
    client.force_login(admin_user)
    middleware = ["config.middleware.QueryCountHeaderMiddleware"]
    from django.conf import settings

    with override_settings(MIDDLEWARE=middleware + settings.MIDDLEWARE):
        response = client.get("/healthz")
    # The session and its user, loaded for the access log.
    assert response["X-Query-Count"] == "2"
    plain = Client()  # a client keeps the middleware it first loaded
    plain.force_login(admin_user)
    assert "X-Query-Count" not in plain.get("/healthz")
